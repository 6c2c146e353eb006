/**
 * Queries over the collector's log (query.ts): the --limit kept, the sums over all records.
 */
import test from 'ava';
import { query, queryText } from '../../src/collector/query';
import { FlowStore } from '../../src/collector/store';
import { batch, tmpDir } from '../helpers/collector';

test('query: only the last --limit records are kept; the sums cover all', (t) => {
  const dir = tmpDir(t);
  const s = new FlowStore(dir);
  for (let k = 1; k <= 20; k++) s.append([batch(k, 5)], k);
  s.close();
  const q = query(dir, { keep: 7 });
  t.is(q.matched, 100);
  t.is(q.records.length, 7);
  t.deepEqual(q.records.map((r) => `${r.s}.${r.i as number}`), ['19.3', '19.4', '20.0', '20.1', '20.2', '20.3', '20.4'], 'the last 7, oldest first');
  t.is(q.flows.reduce((a, f) => a + f.records, 0), 100);
  t.is(query(dir, { keep: 0 }).records.length, 0);
  t.is(query(dir, {}).records.length, 100);
  t.regex(queryText(q, 7), /^100 of 100 records in .*\n[\s\S]*… 93 earlier records not shown/);
});
