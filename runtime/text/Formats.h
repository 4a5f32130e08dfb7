//===- Formats.h - the tokenizer formats (private) --------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// One reader per file format; Tokenizer::open and fromDirectory choose.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_TEXT_FORMATS_H
#define GLINT_RUNTIME_TEXT_FORMATS_H

#include "runtime/text/Tokenizer.h"

namespace mlir::glint::text {

/// A well-formed file of a kind glint does not read (a tokenizer.json whose
/// model is WordPiece, say): fromDirectory then tries the next file.
class UnsupportedTokenizer : public llvm::ErrorInfo<UnsupportedTokenizer> {
public:
  static char ID;
  explicit UnsupportedTokenizer(std::string message)
      : message(std::move(message)) {}
  void log(llvm::raw_ostream &os) const override { os << message; }
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }

private:
  std::string message;
};

/// Hugging Face tokenizer.json (byte-level BPE).
llvm::Expected<std::unique_ptr<Tokenizer>>
openHfTokenizer(llvm::StringRef path);

/// A SentencePiece model (tokenizer.model).
llvm::Expected<std::unique_ptr<Tokenizer>>
openSentencePiece(llvm::StringRef path);

/// An RWKV world vocabulary: lines `<id> <Python str or bytes literal>
/// <length in bytes>`.
llvm::Expected<std::unique_ptr<Tokenizer>> openRwkvVocab(llvm::StringRef path);

/// A JSON object word → id, or one under "word_to_id".
llvm::Expected<std::unique_ptr<Tokenizer>> openWordLevel(llvm::StringRef path);

/// Appends code point `c` to `out` as UTF-8.
void appendUtf8(std::string &out, uint32_t c);

} // namespace mlir::glint::text

#endif // GLINT_RUNTIME_TEXT_FORMATS_H
