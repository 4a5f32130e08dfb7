//===- no-subword-tokenizers.cpp - the GPU runner's tokenizer stand-ins ---===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The runner that prepare.sh builds for the GPU machine links no PCRE2, ICU
// or SentencePiece (that machine has none of them): tokenizer.json and
// SentencePiece models are refused with a message; vocab.json and RWKV
// vocabularies work as in glint-run.
//
//===----------------------------------------------------------------------===//

#include "runtime/text/Formats.h"

using namespace mlir::glint::text;

static llvm::Error missing(llvm::StringRef path, llvm::StringRef what) {
  return llvm::make_error<UnsupportedTokenizer>(
      (path + ": " + what +
       " tokenizers are not in the GPU check's runner (it links no "
       "PCRE2, ICU or SentencePiece); give token ids")
          .str());
}

llvm::Expected<std::unique_ptr<Tokenizer>>
mlir::glint::text::openHfTokenizer(llvm::StringRef path) {
  return missing(path, "tokenizer.json");
}

llvm::Expected<std::unique_ptr<Tokenizer>>
mlir::glint::text::openSentencePiece(llvm::StringRef path) {
  return missing(path, "SentencePiece");
}
