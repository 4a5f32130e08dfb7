//===- FuzzVocab.cpp - fuzzes vocabularies, tokenizers and text inputs ----===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The first byte names the file the next bytes, up to a NUL, are written
// to: vocab.json (word level, also read by readVocabulary), tokenizer.json
// (byte-level BPE) or an RWKV vocabulary. After the NUL comes a run's text:
// read as `--tokens`, as `--text` through the vocabulary, and encoded and
// decoded by the tokenizer.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"
#include "runtime/host/RunSupport.h"
#include "runtime/text/Tokenizer.h"

using namespace mlir::glint::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  static const char *const names[] = {"vocab.json", "tokenizer.json",
                                      "rwkv_vocab_v20230424.txt"};
  const char *name = names[data[0] % 3];
  auto [fileText, runText] = glint_fuzz::asText(data + 1, size - 1).split('\0');
  std::string path = glint_fuzz::writeScratch(name, fileText);
  glint_fuzz::ignore(parseTokens(runText));
  if (auto vocab = readVocabulary(path))
    glint_fuzz::ignore(parseText(runText, *vocab, path));
  else
    llvm::consumeError(vocab.takeError());
  auto tokenizer = mlir::glint::text::Tokenizer::open(path);
  if (!tokenizer) {
    llvm::consumeError(tokenizer.takeError());
    return 0;
  }
  auto ids = (*tokenizer)->encodePrompt(runText);
  if (!ids) {
    llvm::consumeError(ids.takeError());
    return 0;
  }
  (void)(*tokenizer)->decode(*ids);
  return 0;
}
