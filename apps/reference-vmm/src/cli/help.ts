/** Usage text for each command: what it does, its options, an example. */
import { USAGE_MIGRATE } from './help-migrate.js';
import { OPREGION_USAGE } from './opregion.js';

export const MAIN_USAGE = `Usage: vfiokit <command> [options]

Commands:
  run [config]      boot a guest with the configured devices, run the plugins' guest drivers, print the report
  types [config]    list parent devices and their mdev types with available_instances
  lspci [config]    boot, probe, and print what the guest sees, as lspci does
  mdev <action>     mdevctl's define, undefine, modify, start, stop, list and types
  migrate [config]  live-migrate a running guest's vGPU to a second VMM process (PRE_COPY, then STOP_COPY)
  opregion dump <f> print an Intel IGD OpRegion or VBT file readably (or --json)
  opregion decode <f>  print its VBT as intel_vbt_decode does, every block it decodes
  serve             serve plugin devices on UNIX sockets over vfio-user (for QEMU and others)

Options:
  -h, --help        show help (also: vfiokit <command> --help)
  --version         print the version

Example:
  vfiokit run       (the embedded default configuration: one device of each in-tree plugin)
`;

const CONFIG_OPTIONS = `  config                 a YAML or JSON configuration, or an mdevctl --dumpjson list;
                         without one, the embedded default configuration
  --plugin <package>     load this plugin package too (repeatable)
  --device <spec>        add a device: plugin:type[:uuid][@slot], e.g.
                         @vfiokit/sample-mtty:mtty-1@00:04.0 (repeatable; without a
                         config file, --device starts from an empty configuration);
                         or vfio-user:<socket>[@slot], a device another process serves
                         (vfiokit serve), e.g. vfio-user:/run/vfiokit/mtty0.sock@00:05.0;
                         or vfio:<device>[@slot], a device of the host kernel through VFIO
                         (bound to vfio-pci, or an mdev), e.g. vfio:0000:01:00.0@00:06.0
  --defined              add the mdev definitions that are active (vfiokit mdev start)
                         or start automatically (start: auto)
  --state-dir <dir>      where mdev definitions live (default $XDG_STATE_HOME/vfiokit
                         or ~/.local/state/vfiokit)`;

export const USAGE: Readonly<Record<string, string>> = {
  opregion: OPREGION_USAGE,
  migrate: USAGE_MIGRATE,
  run: `Usage: vfiokit run [config] [--plugin <package>]... [--device <spec>]... [--defined] [--json] [--save-frames <dir>]

Boot a guest with the configured devices: load the plugins, create the devices on their
parents, attach them, run the generic PCI probe and each plugin's guest drivers, and print the
report (device tree, every region and how it is mapped, interrupts delivered, access counters,
errors, driver results). Exits 1 when a driver failed or a device recorded an error.

Options:
${CONFIG_OPTIONS}
  --json                 print the report as JSON
  --save-frames <dir>    save each display's primary plane (VFIO_DEVICE_QUERY_GFX_PLANE,
                         REGION mode) as <dir>/<slot>.png
  -h, --help             show this help

Example:
  vfiokit run
  vfiokit run --save-frames frames/
  vfiokit run vm.yaml --device @vfiokit/sample-mtty:mtty-1@00:05.0 --json
`,
  types: `Usage: vfiokit types [config] [--plugin <package>]... [--json]

List the parent devices the plugins offer and their mdev types, laid out as
/sys/class/mdev_bus/<parent>/mdev_supported_types/<type>/{name,description,device_api,available_instances}.
The plugins are those of the configuration (the default one without a file). Where two plugins
name one parent (GVT-g and GVT-d both model 0000:00:02.0), both plugins' types are listed under
it, each with its plugin; on a real host only one driver would own the device.

Options:
  config                 a configuration whose plugins to probe
  --plugin <package>     probe this plugin package too (repeatable)
  --json                 the same as JSON, in mdevctl's types --dumpjson shape (with attributes
                         and plugin per type)
  -h, --help             show this help

Example:
  vfiokit types
`,
  lspci: `Usage: vfiokit lspci [config] [-v|-vv|-vvv] [-n|-nn] [-k] [-x|-xxx|-xxxx] [-i <file>] [--json] [--vfio <device>]...

Boot the configuration, run the guest's PCI probe, and print what the guest sees as pciutils
3.9's lspci prints it: -v adds BARs, flags and every capability (extended ones too), -vv the
registers and decoded capability fields. Names come from the system's PCI ID database, as
lspci finds it (/usr/share/misc/pci.ids[.gz], /usr/share/hwdata/pci.ids[.gz],
/usr/share/pci.ids[.gz]). Config bytes are read through the guest's config cycles only. A -xxxx
dump reads back with the real lspci: lspci -F <file> -vvv.

Options:
  -v                     more detail (repeat: -vv, -vvv)
  -n                     numeric class and IDs (-nn: names and numbers)
  -k                     the guest drivers whose id tables match each function
  -x                     hex dump of the first 64 config bytes (-xxx: 256, -xxxx: 4096)
  -i <file>              the PCI ID database to use instead of the system's
${CONFIG_OPTIONS}
  --json                 print the functions as JSON (IDs and names, BARs, capabilities, config bytes)
  --vfio <device>        a device of the host kernel through VFIO, as the guest would see it
                         (the same as --device vfio:<device>; repeatable)
  -h, --help             show this help

Example:
  vfiokit lspci -vvv
  vfiokit lspci -xxxx > guest.dump && lspci -F guest.dump -vvv
  vfiokit lspci -vv --vfio 0000:01:00.0
`,
  serve: `Usage: vfiokit serve (--socket <path> --device <plugin>:<type>[:uuid])... [--plugin-option <k=v>]... [--save-frames <dir>]
       vfiokit serve --socket <path> --vfio <device>

Create devices of a plugin and serve each over vfio-user on its own UNIX socket, until SIGINT
or SIGTERM; then the clients' sessions end, the socket files are removed and the devices are
removed. A vfio-user client attaches a device: QEMU 10.1+ with -device vfio-user-pci, or
vfiokit run with a vfio-user:<socket> device. One client per socket is served at a time; the
next one waits until it leaves. Mmappable regions live in memfds whose fds go to the client,
and interrupts are eventfds.

Several --socket/--device pairs serve several devices from one process, paired in order (the
first --socket serves the first --device). The plugin is probed once, so devices of one plugin
share its parent: two GVT-g vGPUs carve one host GPU's aperture and fences between them. With
several devices, each device's lines start with its UUID.

Options:
  --socket <path>        the UNIX socket to listen on (must not be in use); one per device
  --device <spec>        plugin:type[:uuid], e.g. @vfiokit/sample-mtty:mtty-2; the plugin is a
                         package name (or a module path) loaded as vfiokit run loads it; without
                         a UUID, one is derived from the plugin, type and socket path
  --plugin-option <k=v>  an option for the plugin's probe, as plugins[].options in a
                         configuration (repeatable; true, false and numbers are typed)
  --vfio <device>        serve a device of the host kernel instead: a sysfs path, a PCI address
                         or an mdev UUID (root, or the /dev/vfio nodes, and its module loaded);
                         the client's DMA_MAPs are mapped into the kernel's IOMMU
  --save-frames <dir>    while serving, save each device's primary plane (QUERY_GFX_PLANE, REGION
                         mode) as <dir>/<uuid>.png each time it changes
  -h, --help             show this help

Example:
  vfiokit serve --socket /run/vfiokit/mtty0.sock --device @vfiokit/sample-mtty:mtty-2
  vfiokit serve --socket /run/vfiokit/edu.sock --vfio 0000:01:00.0
  vfiokit serve --socket /run/vfiokit/a.sock --device @vfiokit/gvt-g:i915-GVTg_V5_4 \\
                --socket /run/vfiokit/b.sock --device @vfiokit/gvt-g:i915-GVTg_V5_4
  vfiokit run --plugin @vfiokit/sample-mtty --device vfio-user:/run/vfiokit/mtty0.sock@00:05.0
`,
  mdev: `Usage: vfiokit mdev <action> [options]

mdevctl's verbs, flags, JSON and messages over a state directory laid out as /etc/mdevctl.d
(definitions) and a record of active devices. There is no daemon: "start" records a device
active, and \`vfiokit run --defined\` creates the active ones and the definitions that start
automatically, next to the configured devices.

Actions:
  define [-u <uuid>] [-p <parent>] [-t <type>] [-a] [--jsonfile <f>]
                         add a definition (the UUID is printed when generated); a running
                         device's --uuid alone defines it as it is
  undefine -u <uuid> [-p <parent>]
                         remove the definitions of the UUID (under the parent only, with -p)
  modify -u <uuid> [-p <parent>] [-t <type>] [-a|-m] [--addattr <name> --value <v>]
         [--delattr] [-i <index>] [--jsonfile <f>]
                         change a definition: type, start policy, attributes (at the end, or
                         at --index), or all of them from mdevctl single-device JSON
  start [-u <uuid>] [-p <parent> -t <type>] [--jsonfile <f>] [config] [--plugin <p>]
                         start a definition, or a device given by parent and type (checked
                         against the plugins' parents, types and available instances)
  stop -u <uuid>         stop an active device
  list [-d] [--dumpjson] [-v] [-u <uuid>] [-p <parent>]
                         the active devices (-d: the definitions); --dumpjson prints mdevctl's
                         JSON (one device's JSON alone when -u picks one); -v adds attributes
  types [-p <parent>] [--dumpjson] [config] [--plugin <p>]
                         the parents and their types, as mdevctl types prints them

Options:
  --state-dir <dir>      where definitions live (default $XDG_STATE_HOME/vfiokit or
                         ~/.local/state/vfiokit)
  -h, --help             show this help

Example:
  vfiokit mdev define --parent mtty --type mtty-1 --auto
  vfiokit mdev modify -u <uuid> --addattr speed --value 9600
  vfiokit mdev list --defined --dumpjson
`,
};
