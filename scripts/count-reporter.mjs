// A node:test reporter that writes `{ file: passedTestCount }` as JSON, so `npm test` can
// refuse a test file that ran nothing.
export default async function* countReporter(source) {
  const counts = {};
  for await (const event of source) {
    if (event.type === 'test:pass' && event.data.file && !event.data.skip && !event.data.todo) {
      // Count leaf tests only: suites report `details.type === 'suite'`.
      if (event.data.details?.type === 'suite') continue;
      counts[event.data.file] = (counts[event.data.file] ?? 0) + 1;
    }
  }
  yield JSON.stringify(counts);
}
