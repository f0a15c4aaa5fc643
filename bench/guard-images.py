#!/usr/bin/env python3
"""Write the regression guard's images (bench/guard.sh) as an OCI layout tar for
`linuxkit cache import`: a kernel image (kernel, kernel.tar of modules), two init
images, and a service image that shares a file with the first init image (so the
identical-file pass has work). Contents are generated from a fixed seed: the same
bytes on every machine, about as compressible as binaries (gzip -6 to about a third).

usage: guard-images.py OUT.tar
"""
import gzip, hashlib, io, json, sys, tarfile

REG = "127.0.0.1:9/guard"  # never contacted: the images are imported
WORDS = [b"mov", b"rax", b"call", b"ret", b"push", b"pop", b"lea", b"rdi", b"jmp", b"cmp",
         b"\x00\x00\x00\x00", b"\xff\xff", b"\x48\x89\xe5", b"\x0f\x1f\x44\x00\x00", b"libc.so.6",
         b"__stack_chk_fail", b"GLIBC_2.34", b"malloc", b"free", b"memcpy", b".text", b".data"]


def content(seed, size):
    """Deterministic bytes about as compressible as machine code (gzip -6 to
    about 45%): mostly literals of a skewed distribution, short repeats of
    recent bytes, a few runs of a small vocabulary; from SHA-256 of a counter."""
    out = bytearray()
    n = 0
    while len(out) < size:
        h = hashlib.sha256(b"%s/%d" % (seed.encode(), n)).digest()
        n += 1
        if h[0] < 40 and len(out) > 4096:  # a short repeat of recent bytes
            back = 8 + (h[1] << 4 | h[2] >> 4) % 4000
            out += out[-back:-back + 4 + h[3] % 28]
        elif h[0] < 60:
            for b in h[1:6]:
                out += WORDS[b % len(WORDS)]
        else:
            out += bytes(b & (0x3f if b & 0x80 else 0x1f) for b in h[1:])
    return bytes(out[:size])


def tar_of(files):
    """A tar (sorted, mtime 0, root) of {path: bytes}, with parent directories."""
    buf = io.BytesIO()
    dirs = sorted({p.rsplit("/", i)[0] for p in files for i in range(1, p.count("/") + 1)})
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
            tf.addfile(ti)
        for p in sorted(files):
            ti = tarfile.TarInfo(p)
            ti.size, ti.mode, ti.mtime = len(files[p]), 0o755, 0
            tf.addfile(ti, io.BytesIO(files[p]))
    return buf.getvalue()


blobs = {}


def blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[d] = data
    return {"digest": d, "size": len(data)}


def image(name, files, entrypoint=None):
    raw = tar_of(files)
    layer = blob(gzip.compress(raw, compresslevel=6, mtime=0))
    cfg = {"architecture": "amd64", "os": "linux",
           "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}
    if entrypoint:
        cfg["config"]["Entrypoint"] = entrypoint
    config = blob(json.dumps(cfg, sort_keys=True).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **config),
           "layers": [dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **layer)]}
    m = blob(json.dumps(man, sort_keys=True).encode())
    return dict(mediaType="application/vnd.oci.image.manifest.v1+json",
                annotations={"io.containerd.image.name": f"{REG}/{name}"}, **m)


K = 1 << 10
# Shaped like bench.yml: most bytes in parts that share nothing (the kernel's
# modules, a containerd-sized binary), a fifth in images sharing a file.
modules = {f"lib/modules/6.1.0/kernel/drivers/m{i}.ko": content(f"ko{i}", 40 * K + 997 * i)
           for i in range(28)}
shared = content("busybox", 200 * K)
manifests = [
    image("kernel:1", {"kernel": content("kernel", 128 * K), "kernel.tar": tar_of(modules)}),
    image("init:1", {"bin/busybox": shared, "lib/libc.so.6": content("libc", 300 * K),
                     "etc/issue": b"guard\n"}),
    image("runc:1", {"usr/bin/runc": content("runc", 400 * K)}),
    image("big:1", {"usr/bin/containerd": content("containerd", 1800 * K)}),
    image("svc:1", {"bin/busybox": shared, "usr/lib/libssl.so.3": content("ssl", 200 * K)},
          entrypoint=["/bin/busybox", "true"]),
]
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": manifests}
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as tf:
    for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                       ("index.json", json.dumps(index, sort_keys=True).encode())] + \
            [(f"blobs/sha256/{d[7:]}", b) for d, b in sorted(blobs.items())]:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
        tf.addfile(ti, io.BytesIO(data))
