//===- SentencePiece.cpp - SentencePiece models through libsentencepiece
//---===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// tokenizer.model files (RecurrentGemma, Gemma, Llama-2) are run by
// libsentencepiece itself: its normaliser, BPE or unigram search and byte
// fallback are the reference.
//
//===----------------------------------------------------------------------===//

#include "runtime/text/Formats.h"

#include "llvm/Support/FormatVariadic.h"

#include <sentencepiece_processor.h>

using namespace mlir::glint::text;
using llvm::Expected;
using llvm::StringRef;

namespace {
class SentencePiece : public Tokenizer {
public:
  sentencepiece::SentencePieceProcessor processor;

  Expected<std::vector<int64_t>> encode(StringRef text) const override {
    if (auto bad = findInvalidUtf8(text))
      return llvm::createStringError(
          llvm::formatv("the text is not valid UTF-8 (byte {0})", *bad));
    std::vector<int> ids;
    auto status = processor.Encode(std::string(text), &ids);
    if (!status.ok())
      return llvm::createStringError(file + ": " + status.ToString());
    return std::vector<int64_t>(ids.begin(), ids.end());
  }

  std::string decodeBytes(llvm::ArrayRef<int64_t> ids) const override {
    std::vector<int> known;
    for (int64_t id : ids)
      if (id >= 0 && id < size())
        known.push_back(static_cast<int>(id));
    std::string text;
    if (!processor.Decode(known, &text).ok())
      return "";
    return text;
  }

  std::string decode(llvm::ArrayRef<int64_t> ids) const override {
    return decodeBytes(ids); // libsentencepiece already substitutes U+FFFD.
  }

  std::string tokenText(int64_t id) const override {
    if (id < 0 || id >= size())
      return llvm::formatv("<{0}>", id).str();
    // Control tokens (<bos>, <eos>) decode to nothing: show the piece.
    if (processor.IsControl(id) || processor.IsUnknown(id))
      return processor.IdToPiece(id);
    // A piece's own text, its leading ▁ a space (Decode drops the first).
    std::string piece = processor.IdToPiece(id);
    if (processor.IsByte(id))
      return toValidUtf8(decodeBytes({id}));
    std::string out;
    for (size_t i = 0; i < piece.size();) {
      if (StringRef(piece).substr(i).starts_with("\xE2\x96\x81")) {
        out += ' ';
        i += 3;
      } else {
        out += piece[i++];
      }
    }
    return out;
  }

  int64_t size() const override { return processor.GetPieceSize(); }
  StringRef kind() const override { return "SentencePiece"; }
};
} // namespace

Expected<std::unique_ptr<Tokenizer>>
mlir::glint::text::openSentencePiece(StringRef path) {
  auto sp = std::make_unique<SentencePiece>();
  sp->file = path.str();
  auto status = sp->processor.Load(std::string(path));
  if (!status.ok())
    return llvm::createStringError(
        path + ": unknown tokenizer type: not a SentencePiece model (" +
        status.ToString() + ")");
  return sp;
}
