// Process entry of a TUN-mode real server's userspace IPIP decapsulator (started by `tsvs realserver setup`).
import { rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { IpipDecap } from '../io/ipip.ts';

const { values } = parseArgs({
  options: {
    dev: { type: 'string', default: 'tsvsipip0' },
    vip: { type: 'string', multiple: true },
    'pid-file': { type: 'string' },
  },
});
if (!values.vip?.length) {
  console.error('decap-main: at least one --vip is needed');
  process.exit(2);
}

const decap = new IpipDecap();
// rp_filter is set by `realserver setup`, which records the old values so teardown can restore them.
await decap.start(values.dev!, values.vip, { relaxRpFilter: false });
const pidFile = values['pid-file'];
if (pidFile) writeFileSync(pidFile, `${process.pid}\n`);
console.log(`ready ipip-decap dev=${decap.tun} vip=${values.vip.join(',')} pid=${process.pid}`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  const s = decap.stats();
  console.log(`stopping: rx=${s.rxPackets} decapsulated=${s.decapsulated} tx=${s.txPackets} bad_outer=${s.badOuter} bad_inner=${s.badInner} not_vip=${s.notVip} gro_merged=${s.groMerged} gro_frames=${s.groFrames}`);
  void decap.stop().finally(() => {
    if (pidFile) rmSync(pidFile, { force: true });
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
