const { createLinter } = require(process.argv[2]);
const fs = require('fs');
(async () => {
  const lint = await createLinter();
  const file = process.argv[3];
  const results = lint(fs.readFileSync(file, 'utf8'), file);
  console.log(JSON.stringify(results));
})().catch((e) => { console.error(e); process.exit(3); });
