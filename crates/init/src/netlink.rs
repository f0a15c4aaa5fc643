//! A minimal rtnetlink client: exactly what runtime.json `interfaces` needs
//! and no more — create a link (a veth pair, or any kind that takes no
//! options: `bridge`, `wireguard`, `dummy`, ...), in the init's network
//! namespace or straight into a process's, and move an existing link into
//! a process's network namespace.
//!
//! Written by hand on purpose: the rtnetlink wire format (a 16-byte
//! `nlmsghdr`, a 16-byte `ifinfomsg`, 4-byte-aligned attributes) is kernel
//! ABI and cannot change, while the netlink crates change their API with
//! nearly every release and would add tens of thousands of lines to a
//! static PID 1 for three messages.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    socket,
};

// Message types and flags (linux/netlink.h, linux/rtnetlink.h).
const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_SETLINK: u16 = 19;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

// Link attributes (linux/if_link.h, linux/veth.h).
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
/// Set on an attribute that contains attributes.
const NLA_F_NESTED: u16 = 0x8000;

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
/// The longest interface name the kernel takes (`IFNAMSIZ` less the NUL).
pub const IFNAME_MAX: usize = 15;

/// A request under construction: the netlink header, then the body.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    /// A request of `kind` with `flags` and sequence number `seq`,
    /// followed by an `ifinfomsg` for link `index` (0: none).
    fn link(kind: u16, flags: u16, seq: u32, index: i32) -> Msg {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        let mut m = Msg { buf };
        m.ifinfomsg(index);
        m
    }

    /// `struct ifinfomsg`: family AF_UNSPEC, no type, `index`, no flags.
    fn ifinfomsg(&mut self, index: i32) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // flags
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // change
        debug_assert_eq!(self.buf.len() - start, IFINFOMSG_LEN);
    }

    fn align(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.align();
    }

    /// A NUL-terminated string attribute, as iproute2 sends names.
    fn attr_str(&mut self, kind: u16, s: &str) {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(kind, &d);
    }

    /// Opens a nested attribute; close it with [`Msg::end`].
    fn begin(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// The `RTM_NEWLINK` request that creates link `name` of `kind`: for a
/// `veth`, with its other end `peer` (which stays where the request is
/// made); with `netns_pid`, the link is created in that process's network
/// namespace instead of the caller's.
pub fn new_link_request(
    seq: u32,
    name: &str,
    kind: &str,
    peer: Option<&str>,
    netns_pid: Option<i32>,
) -> Vec<u8> {
    let mut m = Msg::link(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        seq,
        0,
    );
    m.attr_str(IFLA_IFNAME, name);
    let info = m.begin(IFLA_LINKINFO);
    m.attr(IFLA_INFO_KIND, kind.as_bytes());
    if let Some(peer) = peer {
        let data = m.begin(IFLA_INFO_DATA);
        // VETH_INFO_PEER holds an ifinfomsg then the peer's attributes.
        let p = m.begin(VETH_INFO_PEER);
        m.ifinfomsg(0);
        m.attr_str(IFLA_IFNAME, peer);
        m.end(p);
        m.end(data);
    }
    m.end(info);
    if let Some(pid) = netns_pid {
        m.attr(IFLA_NET_NS_PID, &(pid as u32).to_ne_bytes());
    }
    m.finish()
}

/// The `RTM_SETLINK` request that moves link `index` into the network
/// namespace of process `pid`.
pub fn move_link_request(seq: u32, index: i32, pid: i32) -> Vec<u8> {
    let mut m = Msg::link(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, index);
    m.attr(IFLA_NET_NS_PID, &(pid as u32).to_ne_bytes());
    m.finish()
}

/// Looks for the acknowledgement of request `seq` in a buffer of replies:
/// `Some(Ok)` for success, `Some(Err)` with the kernel's errno, `None` if
/// the buffer holds no answer to `seq` (read on).
pub fn parse_ack(mut buf: &[u8], seq: u32) -> Option<io::Result<()>> {
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
        let mseq = u32::from_ne_bytes(buf[8..12].try_into().unwrap());
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink reply",
            )));
        }
        if kind == NLMSG_ERROR && mseq == seq && len >= NLMSG_HDRLEN + 4 {
            let code = i32::from_ne_bytes(buf[16..20].try_into().unwrap());
            return Some(if code == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(-code))
            });
        }
        let next = len.next_multiple_of(4).min(buf.len());
        buf = &buf[next..];
    }
    None
}

/// An rtnetlink socket in the caller's network namespace.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// Opens and binds a route netlink socket (close-on-exec) in the
    /// calling thread's network namespace.
    pub fn open() -> io::Result<Socket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Socket { fd, seq: 0 })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `req` (built with sequence number `seq`) and waits for the
    /// kernel's acknowledgement.
    fn call(&mut self, seq: u32, req: &[u8]) -> io::Result<()> {
        send(self.fd.as_raw_fd(), req, MsgFlags::empty())?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "netlink socket closed",
                ));
            }
            if let Some(r) = parse_ack(&buf[..n], seq) {
                return r;
            }
        }
    }

    /// Creates link `name` of `kind` (see [`new_link_request`]).
    pub fn add_link(
        &mut self,
        name: &str,
        kind: &str,
        peer: Option<&str>,
        netns_pid: Option<i32>,
    ) -> io::Result<()> {
        let seq = self.next_seq();
        self.call(seq, &new_link_request(seq, name, kind, peer, netns_pid))
    }

    /// Moves the existing link `name` into the network namespace of `pid`.
    pub fn move_link(&mut self, name: &str, pid: i32) -> io::Result<()> {
        let index = nix::net::if_::if_nametoindex(name)
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("no such link: {e}")))?;
        let seq = self.next_seq();
        self.call(seq, &move_link_request(seq, index as i32, pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes(b[at..at + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn veth_request_nests_the_peer_in_linkinfo() {
        let m = new_link_request(7, "veth1", "veth", Some("veth0"), None);
        assert_eq!(u32_at(&m, 0) as usize, m.len());
        assert_eq!(u16_at(&m, 4), RTM_NEWLINK);
        assert_eq!(
            u16_at(&m, 6),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
        assert_eq!(u32_at(&m, 8), 7);
        let a = NLMSG_HDRLEN + IFINFOMSG_LEN;
        // IFLA_IFNAME "veth1\0", padded to 8.
        assert_eq!((u16_at(&m, a), u16_at(&m, a + 2)), (10, IFLA_IFNAME));
        assert_eq!(&m[a + 4..a + 10], b"veth1\0");
        let info = a + 12;
        assert_eq!(u16_at(&m, info + 2), IFLA_LINKINFO | NLA_F_NESTED);
        assert_eq!(u16_at(&m, info) as usize, m.len() - info);
        assert_eq!(
            (u16_at(&m, info + 4), u16_at(&m, info + 6)),
            (8, IFLA_INFO_KIND)
        );
        assert_eq!(&m[info + 8..info + 12], b"veth");
        let data = info + 12;
        assert_eq!(u16_at(&m, data + 2), IFLA_INFO_DATA | NLA_F_NESTED);
        let peer = data + 4;
        assert_eq!(u16_at(&m, peer + 2), VETH_INFO_PEER | NLA_F_NESTED);
        // The peer: an ifinfomsg, then its name.
        let pname = peer + 4 + IFINFOMSG_LEN;
        assert_eq!(u16_at(&m, pname + 2), IFLA_IFNAME);
        assert_eq!(&m[pname + 4..pname + 10], b"veth0\0");
        assert_eq!(u16_at(&m, peer) as usize, pname + 12 - peer);
        assert!(m.len().is_multiple_of(4));
    }

    #[test]
    fn generic_request_in_a_namespace_ends_with_the_pid() {
        let m = new_link_request(1, "br0", "bridge", None, Some(1234));
        let n = m.len();
        assert_eq!((u16_at(&m, n - 8), u16_at(&m, n - 6)), (8, IFLA_NET_NS_PID));
        assert_eq!(u32_at(&m, n - 4), 1234);
        // No IFLA_INFO_DATA for a kind without options.
        let info = NLMSG_HDRLEN + IFINFOMSG_LEN + 8;
        assert_eq!(u16_at(&m, info), 4 + 12);
    }

    #[test]
    fn move_request_names_the_link_by_index() {
        let m = move_link_request(3, 42, 99);
        assert_eq!(m.len(), NLMSG_HDRLEN + IFINFOMSG_LEN + 8);
        assert_eq!(u16_at(&m, 4), RTM_SETLINK);
        assert_eq!(u32_at(&m, NLMSG_HDRLEN + 4), 42);
        assert_eq!(u32_at(&m, m.len() - 4), 99);
    }

    fn error_reply(seq: u32, code: i32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&36u32.to_ne_bytes());
        b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&code.to_ne_bytes());
        b.extend_from_slice(&[0; 16]); // the request's header, echoed
        b
    }

    #[test]
    fn acks_and_errors_are_matched_by_sequence() {
        assert!(matches!(parse_ack(&error_reply(5, 0), 5), Some(Ok(()))));
        let e = parse_ack(&error_reply(5, -libc::EEXIST), 5)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert!(parse_ack(&error_reply(4, 0), 5).is_none());
        let mut two = error_reply(4, 0);
        two.extend(error_reply(5, -libc::ENODEV));
        let e = parse_ack(&two, 5).unwrap().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        assert!(parse_ack(&[1, 0, 0, 0], 5).is_none());
    }
}
