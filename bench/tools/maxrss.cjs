// Preloaded (node --require) into a process whose peak memory a bench measures: prints the peak resident
// set (getrusage's ru_maxrss, KiB) on stderr as the process exits.
'use strict';
process.on('exit', () => {
  process.stderr.write(`\nMAXRSS_KIB ${process.resourceUsage().maxRSS}\n`);
});
