// Reference tokenization with Hugging Face's tokenizers.js, for the parity test
// (tests/unit/tokenizer/hf_parity_test.cpp).
//
// usage: node hf_tokenize.mjs TOKENIZER_JSON [TOKENIZER_CONFIG_JSON] < texts.jsonl > expected.jsonl
// Each input line is a JSON string; each output line is
//   {"ids": [...], "ids_special": [...], "dec": "...", "dec_skip": "..."}
// ids: encode without special tokens; ids_special: with them (the post-processor's BOS/EOS);
// dec / dec_skip: decode(ids_special) keeping / skipping special tokens, without
// clean_up_tokenization_spaces (Turbine does not apply that lossy step).
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Tokenizer } from "@huggingface/tokenizers";

const [tokenizerPath, configPath] = process.argv.slice(2);
if (!tokenizerPath) {
  console.error("usage: node hf_tokenize.mjs TOKENIZER_JSON [TOKENIZER_CONFIG_JSON] < texts.jsonl");
  process.exit(2);
}
const tokenizerJson = JSON.parse(readFileSync(tokenizerPath, "utf8"));
const config = configPath ? JSON.parse(readFileSync(configPath, "utf8")) : {};
const tokenizer = new Tokenizer(tokenizerJson, config);

const decode = (ids, skip) =>
  ids.length === 0
    ? ""
    : tokenizer.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });

const out = [];
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (line.length === 0) continue;
  const text = JSON.parse(line);
  const ids = tokenizer.encode(text, { add_special_tokens: false }).ids;
  const idsSpecial = tokenizer.encode(text, { add_special_tokens: true }).ids;
  out.push(JSON.stringify({ ids, ids_special: idsSpecial, dec: decode(idsSpecial, false), dec_skip: decode(idsSpecial, true) }));
}
process.stdout.write(out.join("\n") + "\n");
