//===- Tokenizer.h - text to token ids and back -----------------*- C++ -*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The tokenizers that checkpoints ship, read from their own files:
//
//   tokenizer.json                Hugging Face byte-level BPE (GPT-2,
//                                 GPT-NeoX, Mamba): NFC, the ByteLevel
//                                 pre-tokeniser (GPT-2's split regex through
//                                 PCRE2), merges by rank, added tokens
//   tokenizer.model               SentencePiece (RecurrentGemma), through
//                                 libsentencepiece
//   rwkv_vocab_v20230424.txt      RWKV world vocabularies (RWKV-5/6): greedy
//                                 longest match over UTF-8 bytes
//   vocab.json                    word-level: words split on spaces (the
//                                 bundled tiny models)
//
// Tokenizer::fromDirectory picks the first that a checkpoint directory has,
// in that order. No MLIR here.
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_TEXT_TOKENIZER_H
#define GLINT_RUNTIME_TEXT_TOKENIZER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::glint::text {

/// The largest token id a vocabulary file may give: 2^20 - 1, as a model's
/// config allows at most 2^20 classes. Ids index a table, so without a
/// bound one line of a vocabulary could ask for terabytes.
constexpr int64_t kMaxTokenId = (int64_t(1) << 20) - 1;

class Tokenizer {
public:
  virtual ~Tokenizer();

  /// The tokenizer in `path`, a file of one of the formats above (by its
  /// name and contents); an error names the file and what is wrong with it.
  static llvm::Expected<std::unique_ptr<Tokenizer>> open(llvm::StringRef path);

  /// The tokenizer a checkpoint directory ships: tokenizer.json (if its
  /// model is one glint reads; else tokenizer.model when there is one), then
  /// tokenizer.model, then an RWKV vocabulary (rwkv_vocab*.txt), then
  /// vocab.json. tokenizer_config.json's `add_bos_token` makes encodePrompt
  /// start with the BOS token.
  static llvm::Expected<std::unique_ptr<Tokenizer>>
  fromDirectory(llvm::StringRef directory);

  /// The token ids of `text`, exactly as the format's reference
  /// implementation makes them (no BOS added). Errors: invalid UTF-8 (with
  /// its byte offset), a word missing from a word-level vocabulary.
  virtual llvm::Expected<std::vector<int64_t>>
  encode(llvm::StringRef text) const = 0;

  /// encode, with the BOS token first when the checkpoint asks for one; an
  /// empty text is an error.
  llvm::Expected<std::vector<int64_t>> encodePrompt(llvm::StringRef text) const;

  /// The bytes that `ids` stand for (not always valid UTF-8: a token can
  /// hold part of a character). Ids the tokenizer does not know are left
  /// out, as the reference implementations do.
  virtual std::string decodeBytes(llvm::ArrayRef<int64_t> ids) const = 0;

  /// decodeBytes as text: each invalid UTF-8 sequence becomes U+FFFD.
  virtual std::string decode(llvm::ArrayRef<int64_t> ids) const;

  /// How one token reads on its own, to label it in outputs: its text
  /// (invalid bytes as U+FFFD), or `<id>` for an id it does not know.
  virtual std::string tokenText(int64_t id) const;

  /// The number of ids (the largest known id + 1).
  virtual int64_t size() const = 0;

  /// "byte-level BPE", "SentencePiece", "RWKV world", "word-level".
  virtual llvm::StringRef kind() const = 0;

  /// Whether tokens are whole words separated by spaces (vocab.json).
  virtual bool isWordLevel() const { return false; }

  /// The file it was read from.
  const std::string &path() const { return file; }

  /// The BOS token encodePrompt starts with, if any.
  std::optional<int64_t> bos;

  /// The file it was read from (set by the format's reader).
  std::string file;
};

/// The byte offset of the first invalid UTF-8 sequence in `text`, if any.
std::optional<size_t> findInvalidUtf8(llvm::StringRef text);

/// `bytes` as valid UTF-8: each maximal invalid subsequence becomes U+FFFD
/// (the Unicode standard's recommended substitution, as Rust's and Python's
/// lossy decoders do).
std::string toValidUtf8(llvm::StringRef bytes);

/// The length of the longest prefix of `bytes` that does not end inside an
/// incomplete UTF-8 sequence (for printing text as it is generated).
size_t completeUtf8Prefix(llvm::StringRef bytes);

} // namespace mlir::glint::text

#endif // GLINT_RUNTIME_TEXT_TOKENIZER_H
