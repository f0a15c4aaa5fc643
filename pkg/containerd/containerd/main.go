// containerd as LinuxKit's init runs it: Debian's containerd sources with
// only the plugins a LinuxKit system uses. Debian's own containerd binary
// links in every plugin, the CRI plugin and its Kubernetes libraries
// above all (48 MB); their package initialisers run at every start, which
// costs most of a second under emulation. LinuxKit runs no CRI (the
// reference disables it too), and needs no btrfs, devmapper, zfs or aufs
// snapshotter.
//
// Kept: everything the init's services, `service` and a `ctr` in a
// service container use: containers, tasks (runtime v2 and the v1 linux
// runtime the tasks service loads), events, namespaces, leases, content,
// images, snapshots (overlayfs and native), diff, introspection, version,
// health checks, the restart monitor and cgroup metrics.
package main

import (
	"fmt"
	"os"

	"github.com/containerd/containerd/cmd/containerd/command"

	_ "github.com/containerd/containerd/diff/walking/plugin"
	_ "github.com/containerd/containerd/events/plugin"
	_ "github.com/containerd/containerd/gc/scheduler"
	_ "github.com/containerd/containerd/metrics/cgroups"
	_ "github.com/containerd/containerd/runtime/restart/monitor"
	_ "github.com/containerd/containerd/runtime/v1/linux"
	_ "github.com/containerd/containerd/runtime/v2"
	_ "github.com/containerd/containerd/runtime/v2/runc/options"
	_ "github.com/containerd/containerd/services/containers"
	_ "github.com/containerd/containerd/services/content"
	_ "github.com/containerd/containerd/services/diff"
	_ "github.com/containerd/containerd/services/events"
	_ "github.com/containerd/containerd/services/healthcheck"
	_ "github.com/containerd/containerd/services/images"
	_ "github.com/containerd/containerd/services/introspection"
	_ "github.com/containerd/containerd/services/leases"
	_ "github.com/containerd/containerd/services/namespaces"
	_ "github.com/containerd/containerd/services/snapshots"
	_ "github.com/containerd/containerd/services/tasks"
	_ "github.com/containerd/containerd/services/version"
	_ "github.com/containerd/containerd/snapshots/native/plugin"
	_ "github.com/containerd/containerd/snapshots/overlay/plugin"
)

func main() {
	app := command.App()
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "containerd: %s\n", err)
		os.Exit(1)
	}
}
