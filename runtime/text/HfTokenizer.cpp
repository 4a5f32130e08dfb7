//===- HfTokenizer.cpp - Hugging Face tokenizer.json, byte-level BPE
//-------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The byte-level BPE of GPT-2 and GPT-NeoX (Mamba's checkpoints ship the
// latter), as the `tokenizers` library runs it:
//
//   1. added tokens are cut out first, leftmost-longest: those marked
//      "normalized": false in the raw text, the others after normalising;
//   2. normalizer: NFC / NFD / NFKC / NFKD (ICU), or none;
//   3. pre-tokenizer: ByteLevel (with GPT-2's split regex unless use_regex
//      is false; a space prepended to each piece with add_prefix_space), or
//      Split by a regex (the pieces and the text between kept), or a
//      Sequence of these; regexes run in PCRE2 with UTF and Unicode
//      properties;
//   4. every byte of a piece becomes its printable stand-in character
//      (GPT-2's byte ↔ unicode table), and the piece is merged pair by pair,
//      lowest merge rank first, every occurrence left to right;
//   5. decode: each token's characters back to bytes (a token with a
//      character outside the table, such as an added token's, as its own
//      UTF-8), then lossy UTF-8.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/InputLimits.h"
#include "runtime/text/Formats.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <array>
#include <map>
#include <mutex>

using namespace mlir::glint::text;
using llvm::Expected;
using llvm::StringRef;

namespace {

/// GPT-2's pre-tokenisation: contractions, letters, digits, other symbols,
/// each with an optional leading space, then runs of whitespace.
constexpr const char *kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
    "\\s+(?!\\S)|\\s+";

/// The byte length of the UTF-8 character that starts at text[i].
size_t utf8Length(StringRef text, size_t i) {
  size_t n = 1;
  while (i + n < text.size() && (text[i + n] & 0xC0) == 0x80)
    ++n;
  return n;
}

/// What a Split pre-tokenizer does with the matches of its pattern (with
/// `invert`, with the text between them), as the `tokenizers` library
/// names it.
enum class SplitBehavior {
  Isolated,           // Each its own piece.
  Removed,            // Dropped.
  MergedWithPrevious, // Joined to the piece before.
  MergedWithNext,     // Joined to the piece after.
  Contiguous,         // Consecutive ones joined into one piece.
};

/// A compiled PCRE2 regex.
class Regex {
public:
  static Expected<std::shared_ptr<Regex>> compile(StringRef pattern) {
    int error;
    PCRE2_SIZE offset;
    pcre2_code *code = pcre2_compile(
        reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
        PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    if (!code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return llvm::createStringError(llvm::formatv(
          "the regex `{0}` does not compile at offset {1}: {2}", pattern,
          offset, reinterpret_cast<const char *>(message)));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); // Interpreted if it fails.
    auto regex = std::make_shared<Regex>();
    regex->code = code;
    return regex;
  }
  ~Regex() { pcre2_code_free(code); }

  /// Splits `text` into its matches and the text between them, in order;
  /// `behavior` says what becomes of the matches (with `invert`, of the
  /// text between them).
  std::vector<std::string> split(const std::string &text,
                                 SplitBehavior behavior = {},
                                 bool invert = false) const {
    // The pieces, each marked whether it is one the behavior applies to.
    std::vector<std::pair<std::string, bool>> marked;
    pcre2_match_data *match =
        pcre2_match_data_create_from_pattern(code, nullptr);
    size_t start = 0, last = 0;
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    while (start <= text.size()) {
      int rc = pcre2_match(code, subject, text.size(), start,
                           PCRE2_NO_UTF_CHECK, match, nullptr);
      if (rc < 0)
        break;
      PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(match);
      size_t from = ovector[0], to = ovector[1];
      if (to == from) { // An empty match: step over one character.
        start = from < text.size() ? from + utf8Length(text, from) : from + 1;
        continue;
      }
      if (from > last)
        marked.push_back({text.substr(last, from - last), invert});
      marked.push_back({text.substr(from, to - from), !invert});
      last = start = to;
    }
    if (last < text.size())
      marked.push_back({text.substr(last), invert});
    pcre2_match_data_free(match);

    std::vector<std::string> pieces;
    bool previousMarked = false;
    for (auto &[piece, isMarked] : marked) {
      bool join = false;
      switch (behavior) {
      case SplitBehavior::Isolated:
        break;
      case SplitBehavior::Removed:
        if (isMarked)
          continue;
        break;
      case SplitBehavior::MergedWithPrevious: // Not onto another match.
        join = isMarked && !previousMarked && !pieces.empty();
        break;
      case SplitBehavior::MergedWithNext: // Not onto another match.
        join = !isMarked && previousMarked;
        break;
      case SplitBehavior::Contiguous:
        join = isMarked && previousMarked;
        break;
      }
      previousMarked = isMarked;
      if (join)
        pieces.back() += piece;
      else
        pieces.push_back(std::move(piece));
    }
    return pieces;
  }

  pcre2_code *code = nullptr;
};

/// One step of the pre-tokenizer.
struct PreTokenizerStep {
  std::shared_ptr<Regex> regex; // Split by it, if set.
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  bool byteLevel = false;       // Map bytes to their stand-ins (last step).
  bool addPrefixSpace = false;
};

struct AddedToken {
  std::string content;
  int64_t id;
  bool normalized;
  /// Matches only where no word character is on either side.
  bool singleWord = false;
  /// Takes the whitespace on its left / right into the token.
  bool lstrip = false, rstrip = false;
};

/// The code point of the UTF-8 character at text[i, i + n) (valid UTF-8).
UChar32 codePoint(StringRef text, size_t i, size_t n) {
  UChar32 c = static_cast<uint8_t>(text[i]) & (n == 1 ? 0x7F : 0x3F >> (n - 1));
  for (size_t k = 1; k < n; ++k)
    c = (c << 6) | (static_cast<uint8_t>(text[i + k]) & 0x3F);
  return c;
}

/// A word character as the `tokenizers` library's single_word rule sees it
/// (Unicode \w: letters, marks, decimal digits, connector punctuation).
bool isWordChar(UChar32 c) {
  return u_hasBinaryProperty(c, UCHAR_ALPHABETIC) ||
         (U_GET_GC_MASK(c) & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) ||
         u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL);
}

/// Where the UTF-8 character that ends text[0, end) starts (end > 0).
size_t charStartBefore(StringRef text, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (text[i] & 0xC0) == 0x80)
    --i;
  return i;
}

/// The code point that ends text[0, end) (valid UTF-8), or -1 at 0.
UChar32 codePointBefore(StringRef text, size_t end) {
  if (end == 0)
    return -1;
  size_t i = charStartBefore(text, end);
  return codePoint(text, i, end - i);
}

/// A piece of the input: text still to tokenize, or an added token.
struct Segment {
  std::string text;
  int64_t id = -1;
};

class ByteLevelBpe : public Tokenizer {
public:
  llvm::StringMap<int64_t> vocab;
  std::vector<std::string> tokens; // By id (added tokens included).
  /// (left id, right id) → (rank, merged id).
  llvm::DenseMap<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>>
      merges;
  std::vector<AddedToken> added;
  std::vector<const icu::Normalizer2 *> normalizers;
  std::vector<PreTokenizerStep> preTokenizer;
  std::optional<int64_t> unknown;
  bool ignoreMerges = false;
  /// Byte → its stand-in character (UTF-8), and back.
  std::array<std::string, 256> byteChar;
  std::map<std::string, uint8_t> charByte;

  mutable std::mutex cacheMutex;
  mutable llvm::StringMap<std::vector<int64_t>> cache;

  ByteLevelBpe() {
    // Printable Latin-1 bytes stand for themselves; the others, in order,
    // for U+0100 onwards.
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                       (b >= 0xAE && b <= 0xFF);
      std::string c;
      appendUtf8(c, printable ? b : next++);
      byteChar[b] = c;
      charByte[c] = static_cast<uint8_t>(b);
    }
  }

  Expected<std::string> normalize(std::string text) const {
    for (const icu::Normalizer2 *n : normalizers) {
      UErrorCode status = U_ZERO_ERROR;
      icu::UnicodeString normal = n->normalize(
          icu::UnicodeString::fromUTF8(icu::StringPiece(text)), status);
      if (U_FAILURE(status))
        return llvm::createStringError(llvm::Twine("normalization failed: ") +
                                       u_errorName(status));
      text.clear();
      normal.toUTF8String(text);
    }
    return text;
  }

  /// Cuts the added tokens whose `normalized` flag is `normalized` out of
  /// the text segments, leftmost-longest.
  std::vector<Segment> cutAdded(std::vector<Segment> in,
                                bool normalized) const {
    std::vector<Segment> out;
    for (Segment &s : in) {
      if (s.id >= 0) {
        out.push_back(std::move(s));
        continue;
      }
      StringRef text = s.text;
      size_t last = 0;
      for (size_t i = 0; i < text.size();) {
        const AddedToken *best = nullptr;
        for (const AddedToken &a : added)
          if (a.normalized == normalized && !a.content.empty() &&
              text.substr(i).starts_with(a.content) &&
              (!best || a.content.size() > best->content.size()))
            best = &a;
        if (!best) {
          ++i;
          continue;
        }
        size_t from = i, to = i + best->content.size();
        // Matches do not overlap: a refused one is skipped as a whole.
        i = to;
        if (best->singleWord &&
            (isWordChar(codePointBefore(text, from)) ||
             (to < text.size() &&
              isWordChar(codePoint(text, to, utf8Length(text, to))))))
          continue;
        // Not back past what an earlier match took.
        if (best->lstrip)
          while (from > last && u_isUWhiteSpace(codePointBefore(text, from)))
            from = charStartBefore(text, from);
        if (best->rstrip)
          while (to < text.size() &&
                 u_isUWhiteSpace(codePoint(text, to, utf8Length(text, to))))
            to += utf8Length(text, to);
        if (from > last)
          out.push_back({text.slice(last, from).str()});
        out.push_back({"", best->id});
        i = last = to;
      }
      if (last < text.size())
        out.push_back({text.substr(last).str()});
    }
    return out;
  }

  /// BPE of one pre-tokenized piece (in stand-in characters).
  Expected<std::vector<int64_t>> bpe(StringRef word) const {
    {
      std::lock_guard<std::mutex> lock(cacheMutex);
      if (auto it = cache.find(word); it != cache.end())
        return it->second;
    }
    std::vector<int64_t> symbols;
    if (auto it = vocab.find(word); ignoreMerges && it != vocab.end()) {
      symbols.push_back(it->second);
    } else {
      for (size_t i = 0; i < word.size();) {
        size_t n = utf8Length(word, i);
        auto it = vocab.find(word.substr(i, n));
        if (it != vocab.end())
          symbols.push_back(it->second);
        else if (unknown)
          symbols.push_back(*unknown);
        else
          return llvm::createStringError(llvm::formatv(
              "'{0}' is not in the vocabulary of {1}, which has no unknown "
              "token",
              word.substr(i, n), file));
        i += n;
      }
      while (symbols.size() > 1) {
        // The lowest-ranked pair, then every occurrence of it.
        int64_t bestRank = INT64_MAX;
        std::pair<int64_t, int64_t> bestPair;
        int64_t mergedId = -1;
        for (size_t i = 0; i + 1 < symbols.size(); ++i) {
          auto it = merges.find({symbols[i], symbols[i + 1]});
          if (it != merges.end() && it->second.first < bestRank) {
            bestRank = it->second.first;
            bestPair = it->first;
            mergedId = it->second.second;
          }
        }
        if (mergedId < 0)
          break;
        std::vector<int64_t> next;
        for (size_t i = 0; i < symbols.size(); ++i) {
          if (i + 1 < symbols.size() && symbols[i] == bestPair.first &&
              symbols[i + 1] == bestPair.second) {
            next.push_back(mergedId);
            ++i;
          } else {
            next.push_back(symbols[i]);
          }
        }
        symbols = std::move(next);
      }
    }
    std::lock_guard<std::mutex> lock(cacheMutex);
    cache[word] = symbols;
    return symbols;
  }

  Expected<std::vector<int64_t>> encode(StringRef text) const override {
    if (auto bad = findInvalidUtf8(text))
      return llvm::createStringError(
          llvm::formatv("the text is not valid UTF-8 (byte {0})", *bad));
    std::vector<Segment> segments = cutAdded({{text.str()}}, false);
    for (Segment &s : segments)
      if (s.id < 0) {
        auto normal = normalize(std::move(s.text));
        if (!normal)
          return normal.takeError();
        s.text = std::move(*normal);
      }
    segments = cutAdded(std::move(segments), true);
    std::vector<int64_t> ids;
    for (const Segment &s : segments) {
      if (s.id >= 0) {
        ids.push_back(s.id);
        continue;
      }
      std::vector<std::string> pieces = {s.text};
      for (const PreTokenizerStep &step : preTokenizer) {
        std::vector<std::string> next;
        for (std::string &piece : pieces) {
          if (step.addPrefixSpace && !StringRef(piece).starts_with(" "))
            piece.insert(0, " ");
          if (!step.regex) {
            next.push_back(std::move(piece));
            continue;
          }
          for (std::string &p :
               step.regex->split(piece, step.behavior, step.invert))
            next.push_back(std::move(p));
        }
        pieces = std::move(next);
      }
      for (const std::string &piece : pieces) {
        std::string word;
        for (char c : piece)
          word += byteChar[static_cast<uint8_t>(c)];
        auto symbols = bpe(word);
        if (!symbols)
          return symbols.takeError();
        ids.insert(ids.end(), symbols->begin(), symbols->end());
      }
    }
    return ids;
  }

  std::string decodeBytes(llvm::ArrayRef<int64_t> ids) const override {
    std::string out;
    for (int64_t id : ids) {
      if (id < 0 || id >= static_cast<int64_t>(tokens.size()))
        continue;
      const std::string &token = tokens[id];
      std::string bytes;
      bool mapped = true;
      for (size_t i = 0; i < token.size() && mapped;) {
        size_t n = utf8Length(token, i);
        auto it = charByte.find(token.substr(i, n));
        if (it == charByte.end())
          mapped = false;
        else
          bytes += static_cast<char>(it->second);
        i += n;
      }
      out += mapped ? bytes : token;
    }
    return out;
  }

  int64_t size() const override { return tokens.size(); }
  StringRef kind() const override { return "byte-level BPE"; }
};

llvm::Error unsupported(StringRef path, const llvm::Twine &what) {
  return llvm::make_error<UnsupportedTokenizer>(
      (path + ": unknown tokenizer type: " + what +
       " (glint reads byte-level BPE tokenizer.json files, as GPT-2, "
       "GPT-NeoX and Mamba ship)")
          .str());
}

/// The normalizer `n` (null, one, or a Sequence) into `out`.
llvm::Error readNormalizer(StringRef path, const llvm::json::Value *n,
                           std::vector<const icu::Normalizer2 *> &out) {
  if (!n || n->kind() == llvm::json::Value::Null)
    return llvm::Error::success();
  const llvm::json::Object *object = n->getAsObject();
  StringRef type = object ? object->getString("type").value_or("") : "";
  if (type == "Sequence") {
    if (const llvm::json::Array *list = object->getArray("normalizers"))
      for (const llvm::json::Value &v : *list)
        if (llvm::Error e = readNormalizer(path, &v, out))
          return e;
    return llvm::Error::success();
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2 *normalizer =
      type == "NFC"    ? icu::Normalizer2::getNFCInstance(status)
      : type == "NFD"  ? icu::Normalizer2::getNFDInstance(status)
      : type == "NFKC" ? icu::Normalizer2::getNFKCInstance(status)
      : type == "NFKD" ? icu::Normalizer2::getNFKDInstance(status)
                       : nullptr;
  if (!normalizer && type.empty())
    return unsupported(path, "a normalizer without a type");
  if (!normalizer)
    return unsupported(path, "normalizer '" + type + "'");
  if (U_FAILURE(status))
    return llvm::createStringError(path + ": ICU has no " + type +
                                   " normalizer: " + u_errorName(status));
  out.push_back(normalizer);
  return llvm::Error::success();
}

/// The pre-tokenizer `p` (one step or a Sequence) into `out`.
llvm::Error readPreTokenizer(StringRef path, const llvm::json::Value *p,
                             std::vector<PreTokenizerStep> &out) {
  const llvm::json::Object *object = p ? p->getAsObject() : nullptr;
  if (!object)
    return unsupported(path, "no pre_tokenizer");
  StringRef type = object->getString("type").value_or("");
  if (type == "Sequence") {
    if (const llvm::json::Array *list = object->getArray("pretokenizers"))
      for (const llvm::json::Value &v : *list)
        if (llvm::Error e = readPreTokenizer(path, &v, out))
          return e;
    return llvm::Error::success();
  }
  PreTokenizerStep step;
  if (type == "ByteLevel") {
    step.byteLevel = true;
    step.addPrefixSpace =
        object->getBoolean("add_prefix_space").value_or(false);
    if (object->getBoolean("use_regex").value_or(true)) {
      auto regex = Regex::compile(kGpt2Pattern);
      if (!regex)
        return regex.takeError();
      step.regex = *regex;
    }
  } else if (type == "Split") {
    StringRef behavior = object->getString("behavior").value_or("");
    std::optional<SplitBehavior> known =
        llvm::StringSwitch<std::optional<SplitBehavior>>(behavior)
            .Case("Isolated", SplitBehavior::Isolated)
            .Case("Removed", SplitBehavior::Removed)
            .Case("MergedWithPrevious", SplitBehavior::MergedWithPrevious)
            .Case("MergedWithNext", SplitBehavior::MergedWithNext)
            .Case("Contiguous", SplitBehavior::Contiguous)
            .Default(std::nullopt);
    if (!known)
      return unsupported(path, "Split pre-tokenizer with behavior '" +
                                   behavior + "'");
    step.behavior = *known;
    step.invert = object->getBoolean("invert").value_or(false);
    const llvm::json::Object *pattern = object->getObject("pattern");
    std::optional<StringRef> regex =
        pattern ? pattern->getString("Regex") : std::nullopt;
    std::string literal;
    if (!regex && pattern)
      if (auto s = pattern->getString("String")) {
        for (char c : *s) { // Quote it for PCRE2.
          if (!llvm::isAlnum(c) && !(c & 0x80))
            literal += '\\';
          literal += c;
        }
        regex = literal;
      }
    if (!regex)
      return unsupported(path, "Split pre-tokenizer without a pattern");
    auto compiled = Regex::compile(*regex);
    if (!compiled)
      return llvm::createStringError(path + ": " +
                                     llvm::toString(compiled.takeError()));
    step.regex = *compiled;
  } else {
    return unsupported(path, "pre_tokenizer '" + type + "'");
  }
  out.push_back(step);
  return llvm::Error::success();
}

} // namespace

Expected<std::unique_ptr<Tokenizer>>
mlir::glint::text::openHfTokenizer(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return llvm::createStringError(path + ": " + buffer.getError().message());
  auto parsed = mlir::glint::runtime::parseJSON((*buffer)->getBuffer());
  if (!parsed)
    return llvm::createStringError(
        path + ": invalid JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *root = parsed->getAsObject();
  const llvm::json::Object *model = root ? root->getObject("model") : nullptr;
  if (!model)
    return llvm::createStringError(path + ": no \"model\" object");
  StringRef type = model->getString("type").value_or("");
  if (type != "BPE")
    return unsupported(path, "model type '" + type + "'");
  auto bpe = std::make_unique<ByteLevelBpe>();
  bpe->file = path.str();
  if (llvm::Error e =
          readNormalizer(path, root->get("normalizer"), bpe->normalizers))
    return std::move(e);
  if (llvm::Error e =
          readPreTokenizer(path, root->get("pre_tokenizer"), bpe->preTokenizer))
    return std::move(e);
  if (bpe->preTokenizer.empty() || !bpe->preTokenizer.back().byteLevel)
    return unsupported(path, "a BPE without the ByteLevel pre-tokenizer "
                             "last");
  if (const llvm::json::Object *decoder = root->getObject("decoder"))
    if (decoder->getString("type").value_or("") != "ByteLevel")
      return unsupported(
          path, "decoder '" + decoder->getString("type").value_or("") + "'");
  if (model->getBoolean("byte_fallback").value_or(false))
    return unsupported(path, "a byte-level BPE with byte_fallback");
  // Empty ones (as some tiktoken-derived files write) change nothing.
  if (!model->getString("continuing_subword_prefix").value_or("").empty() ||
      !model->getString("end_of_word_suffix").value_or("").empty())
    return unsupported(path, "a BPE with subword prefixes or suffixes");
  bpe->ignoreMerges = model->getBoolean("ignore_merges").value_or(false);

  const llvm::json::Object *vocab = model->getObject("vocab");
  if (!vocab)
    return llvm::createStringError(path + ": the model has no vocab");
  auto setToken = [&](int64_t id, StringRef token) {
    if (id >= static_cast<int64_t>(bpe->tokens.size()))
      bpe->tokens.resize(id + 1);
    bpe->tokens[id] = token.str();
  };
  for (const auto &[token, value] : *vocab) {
    auto id = value.getAsInteger();
    if (!id || *id < 0)
      return llvm::createStringError(path + ": the id of '" + token.str() +
                                     "' is not a non-negative integer");
    if (*id > kMaxTokenId)
      return llvm::createStringError(
          llvm::formatv("{0}: the id of '{1}' is larger than {2}", path,
                        token.str(), kMaxTokenId));
    bpe->vocab[token.str()] = *id;
    setToken(*id, token);
  }
  if (auto unk = model->getString("unk_token"))
    if (auto it = bpe->vocab.find(*unk); it != bpe->vocab.end())
      bpe->unknown = it->second;

  const llvm::json::Array *merges = model->getArray("merges");
  if (!merges)
    return llvm::createStringError(path + ": the model has no merges");
  for (auto [rank, merge] : llvm::enumerate(*merges)) {
    StringRef left, right;
    if (auto s = merge.getAsString()) {
      std::tie(left, right) = s->split(' ');
    } else if (const llvm::json::Array *pair = merge.getAsArray();
               pair && pair->size() == 2 && (*pair)[0].getAsString() &&
               (*pair)[1].getAsString()) {
      left = *(*pair)[0].getAsString();
      right = *(*pair)[1].getAsString();
    }
    auto l = bpe->vocab.find(left), r = bpe->vocab.find(right);
    auto m = bpe->vocab.find((left + right).str());
    if (left.empty() || right.empty() || l == bpe->vocab.end() ||
        r == bpe->vocab.end() || m == bpe->vocab.end())
      return llvm::createStringError(llvm::formatv(
          "{0}: merge {1} ('{2}' '{3}') is of tokens not in the vocabulary",
          path, rank, left, right));
    // The first of duplicate merges counts.
    bpe->merges.try_emplace({l->second, r->second},
                            std::pair<int64_t, int64_t>(rank, m->second));
  }

  if (const llvm::json::Array *list = root->getArray("added_tokens"))
    for (const llvm::json::Value &v : *list) {
      const llvm::json::Object *a = v.getAsObject();
      auto id = a ? a->getInteger("id") : std::nullopt;
      auto content = a ? a->getString("content") : std::nullopt;
      if (!id || !content || *id < 0)
        return llvm::createStringError(
            path + ": an added token without an id or content");
      if (*id > kMaxTokenId)
        return llvm::createStringError(
            llvm::formatv("{0}: the id of added token '{1}' is larger than {2}",
                          path, *content, kMaxTokenId));
      AddedToken token{content->str(), *id,
                       a->getBoolean("normalized").value_or(true)};
      token.singleWord = a->getBoolean("single_word").value_or(false);
      token.lstrip = a->getBoolean("lstrip").value_or(false);
      token.rstrip = a->getBoolean("rstrip").value_or(false);
      bpe->added.push_back(std::move(token));
      setToken(*id, *content);
    }
  return bpe;
}
