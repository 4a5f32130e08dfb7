//===- FuzzVocab.cpp - fuzzes vocabularies and token/word inputs ----------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// Up to the first NUL byte the input is a vocabulary file (vocab.json);
// after it, a run's text, read both as `--tokens` and as `--text` through
// that vocabulary.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"
#include "runtime/host/RunSupport.h"

using namespace mlir::glint::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto [vocabText, runText] = glint_fuzz::asText(data, size).split('\0');
  std::string path = glint_fuzz::writeScratch("vocab.json", vocabText);
  glint_fuzz::ignore(parseTokens(runText));
  auto vocab = readVocabulary(path);
  if (!vocab) {
    llvm::consumeError(vocab.takeError());
    return 0;
  }
  glint_fuzz::ignore(parseText(runText, *vocab, path));
  return 0;
}
