/** Usage of `vfiokit migrate`. */
export const USAGE_MIGRATE = `Usage: vfiokit migrate [config] [--device <spec>]... [--to <socket>] [--json]
       vfiokit migrate --incoming <socket> [config] [--device <spec>]... [--json]

Live-migrate a running guest's devices to a second VMM process over a UNIX socket. The source
boots the configuration (without one: an NVIDIA T4-4C vGPU with a 16 MiB framebuffer and 32 MiB
of RAM), starts each device's guest migration program, and moves the guest as QEMU does:
RUNNING -> PRE_COPY while the guest keeps running (rounds until VFIO_MIG_GET_PRECOPY_INFO shows
the first pass done and little dirty), then STOP_COPY to the end of the stream; guest RAM goes
over the same socket. The destination (a child process started with the same arguments, or one
started with --incoming and its own configuration, as QEMU's -incoming) boots its configuration
before it listens, compares the description the source sends (RAM size; each device's slot,
plugin, type, PCI identity, BARs and vectors) with its own and refuses any difference; then it
goes STOP -> RESUMING, writes the streams, -> STOP -> RUNNING, and the guest program verifies
its memory and in-flight work there. The stream carries state only: the destination never loads
a plugin or a configuration from it. Its socket is owner-only (0600): only this user and root
may connect, and whoever connects can hand the destination a guest. A progress bar shows on a
terminal; the last line gives the total time and the downtime. If the destination refuses the
stream, the source goes back to RUNNING and the guest program verifies on the source.

Options:
  config                 a YAML or JSON configuration (every device must migrate)
  --device <spec>        add a device: plugin:type[:uuid][@slot] (repeatable)
  --to <socket>          migrate to a destination already listening there (default: start one)
  --incoming <socket>    be the destination: boot the configuration, listen on the socket
                         (owner-only), take one migration; SIGINT/SIGTERM stop it and remove
                         the socket
  --round-bytes <n>      bytes sent per pre-copy round, at least 4096 (default 1048576)
  --json                 print the outcome as JSON
  -h, --help             show this help

Example:
  vfiokit migrate
`;
