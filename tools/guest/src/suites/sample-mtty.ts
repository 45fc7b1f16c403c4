/**
 * sample-mtty under Linux's own serial driver: one boot per type (mtty-1, mtty-2), each card
 * at 00:05.0. 8250_pci is built into Debian's kernel and binds the card by its IDs (the
 * kernel's mtty sample has the WCH CH352's 4348:3253).
 */
import { checkScript, defineSuite, type GuestBoot } from '../suite.js';

const boot = (type: 'mtty-1' | 'mtty-2', ports: number): GuestBoot => ({
  name: type,
  devices: [{ id: 'mtty', device: `@vfiokit/sample-mtty:${type}`, addr: '05.0' }],
  env: { PORTS: String(ports), VENDOR_DEVICE: '4348:3253' },
  checks: [
    {
      name: 'lspci shows a 16550 serial controller [4348:3253] with one 8-port I/O BAR per port',
      script: checkScript('sample-mtty/identity.sh'),
    },
    {
      name: "8250_pci binds every port at its BAR's I/O address",
      script: checkScript('sample-mtty/ports-bound.sh'),
    },
    {
      name: '64 KiB of random bytes loop back intact on every port at 115200 baud, IRQ count rising',
      script: checkScript('sample-mtty/loopback.sh', { BAUD: 115200 }),
      timeoutSec: 90 * ports,
    },
    {
      name: '64 KiB of random bytes loop back intact on every port at 9600 baud, IRQ count rising',
      script: checkScript('sample-mtty/loopback.sh', { BAUD: 9600 }),
      timeoutSec: 90 * ports,
    },
    {
      name: 'interrupts: MSI where offered, else INTx on its IO-APIC line',
      script: checkScript('sample-mtty/interrupts.sh'),
    },
  ],
});

export default defineSuite({ name: 'sample-mtty', boots: [boot('mtty-1', 1), boot('mtty-2', 2)] });
