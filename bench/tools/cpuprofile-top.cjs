#!/usr/bin/env node
// Summarise V8 .cpuprofile files (node --cpu-prof): per file (one per thread), the top functions by self
// time, as a share of the thread's samples that were not idle.
// Usage: node bench/tools/cpuprofile-top.cjs FILE.cpuprofile... [--top N]
'use strict';
const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
const ti = args.indexOf('--top');
const top = ti >= 0 ? Number(args.splice(ti, 2)[1]) : 15;
for (const file of args) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const id of p.samples) counts.set(id, (counts.get(id) || 0) + 1);
  const self = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, c] of counts) {
    const f = byId.get(id).callFrame;
    if (f.functionName === '(idle)') { idle += c; continue; }
    total += c;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? path.basename(f.url) : ''}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) || 0) + c);
  }
  const ms = (p.endTime - p.startTime) / 1000;
  console.log(`${path.basename(file)}: ${ms.toFixed(0)} ms, ${total} busy samples, ${idle} idle`);
  for (const [k, c] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${((100 * c) / total).toFixed(1).padStart(5)} %  ${k}`);
}
