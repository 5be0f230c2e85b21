// A JavaScript plugin's syntax check, run by `fastmcp plugin build` before
// componentize-js: oxc's parser (the one componentize-js uses, from the same
// install) on the entry module; each error as `file:line:column: message`
// with its code frame on stderr; exit status 1 when there is any.
import oxc from "oxc-parser";
import { readFileSync } from "node:fs";

const file = process.argv[2];
const source = readFileSync(file, "utf8");
const { errors } = await oxc.parseAsync(file, source);

for (const error of errors) {
  // The code frame's header is `[file:line:column]`.
  const where = /\[([^\]\n]+:\d+:\d+)\]/.exec(error.codeframe ?? "")?.[1] ?? file;
  console.error(`${where}: ${error.message}`);
  if (error.codeframe) console.error(error.codeframe);
}
process.exit(errors.length > 0 ? 1 : 0);
