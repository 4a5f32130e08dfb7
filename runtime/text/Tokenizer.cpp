//===- Tokenizer.cpp - choosing a tokenizer, UTF-8, word level
//-------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/InputLimits.h"
#include "runtime/text/Formats.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <map>

using namespace mlir::glint::text;
using llvm::Expected;
using llvm::StringRef;

char UnsupportedTokenizer::ID;

Tokenizer::~Tokenizer() = default;

//===----------------------------------------------------------------------===//
// UTF-8
//===----------------------------------------------------------------------===//

/// The length of the valid UTF-8 sequence at the start of `s` (1-4), or 0
/// if there is none; `prefix` is then the length of the longest prefix of a
/// valid sequence that `s` starts with (0 for a byte that starts none).
static size_t sequenceAt(StringRef s, size_t &prefix) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  uint8_t b = byte(0);
  prefix = 0;
  if (b < 0x80)
    return 1;
  size_t length;
  uint8_t lo = 0x80, hi = 0xBF; // The range of the second byte.
  if (b >= 0xC2 && b <= 0xDF)
    length = 2;
  else if (b >= 0xE0 && b <= 0xEF) {
    length = 3;
    if (b == 0xE0)
      lo = 0xA0;
    if (b == 0xED)
      hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    length = 4;
    if (b == 0xF0)
      lo = 0x90;
    if (b == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  prefix = 1;
  for (size_t i = 1; i < length; ++i) {
    if (i >= s.size())
      return 0;
    uint8_t c = byte(i);
    if (i == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF))
      return 0;
    prefix = i + 1;
  }
  return length;
}

std::optional<size_t> mlir::glint::text::findInvalidUtf8(StringRef text) {
  for (size_t i = 0; i < text.size();) {
    size_t prefix;
    size_t n = sequenceAt(text.drop_front(i), prefix);
    if (n == 0)
      return i;
    i += n;
  }
  return std::nullopt;
}

std::string mlir::glint::text::toValidUtf8(StringRef bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    size_t prefix;
    size_t n = sequenceAt(bytes.drop_front(i), prefix);
    if (n) {
      out.append(bytes.data() + i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += std::max<size_t>(prefix, 1);
    }
  }
  return out;
}

size_t mlir::glint::text::completeUtf8Prefix(StringRef bytes) {
  // Only the last three bytes can be an unfinished sequence.
  for (size_t back = 1; back <= std::min<size_t>(3, bytes.size()); ++back) {
    size_t start = bytes.size() - back;
    uint8_t b = static_cast<uint8_t>(bytes[start]);
    if ((b & 0xC0) == 0x80)
      continue; // A continuation byte: look further back.
    size_t prefix;
    if (sequenceAt(bytes.drop_front(start), prefix) == 0 && prefix == back)
      return start; // A valid start, cut short by the end.
    break;
  }
  return bytes.size();
}

void mlir::glint::text::appendUtf8(std::string &out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

//===----------------------------------------------------------------------===//
// Tokenizer
//===----------------------------------------------------------------------===//

std::string Tokenizer::decode(llvm::ArrayRef<int64_t> ids) const {
  return toValidUtf8(decodeBytes(ids));
}

std::string Tokenizer::tokenText(int64_t id) const {
  if (id < 0 || id >= size())
    return llvm::formatv("<{0}>", id).str();
  return decode({id});
}

Expected<std::vector<int64_t>> Tokenizer::encodePrompt(StringRef text) const {
  if (text.empty())
    return llvm::createStringError("the prompt is empty");
  auto ids = encode(text);
  if (!ids)
    return ids.takeError();
  if (bos)
    ids->insert(ids->begin(), *bos);
  if (ids->empty())
    return llvm::createStringError(
        "the prompt makes no tokens (with tokenizer " + file + ")");
  return ids;
}

Expected<std::unique_ptr<Tokenizer>> Tokenizer::open(StringRef path) {
  if (!llvm::sys::fs::exists(path))
    return llvm::createStringError(path + ": no such tokenizer file");
  StringRef name = llvm::sys::path::filename(path);
  StringRef ext = llvm::sys::path::extension(path);
  if (ext == ".model")
    return openSentencePiece(path);
  if (ext == ".txt")
    return openRwkvVocab(path);
  if (ext != ".json")
    return llvm::createStringError(
        path + ": unknown tokenizer type (glint reads tokenizer.json, "
               "tokenizer.model, rwkv_vocab*.txt and vocab.json)");
  // A tokenizer.json has a "model"; a word-level vocabulary does not.
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return llvm::createStringError(path + ": " + buffer.getError().message());
  auto parsed = mlir::glint::runtime::parseJSON((*buffer)->getBuffer());
  if (!parsed)
    return llvm::createStringError(
        path + ": invalid JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
  if (object && object->get("model"))
    return openHfTokenizer(path);
  if (name == "tokenizer.json")
    return llvm::createStringError(path + ": a tokenizer.json without a model");
  return openWordLevel(path);
}

Expected<std::unique_ptr<Tokenizer>>
Tokenizer::fromDirectory(StringRef directory) {
  auto file = [&](StringRef name) -> std::string {
    llvm::SmallString<256> path(directory);
    llvm::sys::path::append(path, name);
    return llvm::sys::fs::exists(path) ? std::string(path) : std::string();
  };
  std::string json = file("tokenizer.json"), model = file("tokenizer.model");
  std::string rwkv;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(directory, ec), end;
       it != end && !ec; it.increment(ec)) {
    StringRef name = llvm::sys::path::filename(it->path());
    if (name.starts_with("rwkv_vocab") && name.ends_with(".txt") &&
        (rwkv.empty() || it->path() < rwkv))
      rwkv = it->path();
  }
  std::string words = file("vocab.json");

  Expected<std::unique_ptr<Tokenizer>> tokenizer =
      llvm::createStringError("no tokenizer");
  llvm::consumeError(tokenizer.takeError());
  if (!json.empty()) {
    tokenizer = open(json);
    // A tokenizer.json glint does not read yet (Gemma's SentencePiece-style
    // BPE, say) comes with the tokenizer.model it was made from.
    if (!tokenizer && !model.empty()) {
      llvm::Error e = llvm::handleErrors(tokenizer.takeError(),
                                         [](const UnsupportedTokenizer &) {});
      if (e)
        return std::move(e);
      tokenizer = open(model);
    }
  } else if (!model.empty()) {
    tokenizer = open(model);
  } else if (!rwkv.empty()) {
    tokenizer = open(rwkv);
  } else if (!words.empty()) {
    tokenizer = open(words);
  } else {
    return llvm::createStringError(
        directory + ": no tokenizer (tokenizer.json, tokenizer.model, "
                    "rwkv_vocab*.txt or vocab.json) in the directory");
  }
  if (!tokenizer)
    return tokenizer.takeError();

  // tokenizer_config.json: whether prompts start with BOS (SentencePiece
  // checkpoints such as RecurrentGemma's ask for it).
  std::string config = file("tokenizer_config.json");
  if (config.empty())
    return tokenizer;
  auto buffer = llvm::MemoryBuffer::getFile(config);
  if (!buffer)
    return llvm::createStringError(config + ": " + buffer.getError().message());
  auto parsed = mlir::glint::runtime::parseJSON((*buffer)->getBuffer());
  if (!parsed)
    return llvm::createStringError(
        config + ": invalid JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
  if (!object || !object->getBoolean("add_bos_token").value_or(false))
    return tokenizer;
  std::optional<StringRef> bosText = object->getString("bos_token");
  if (const llvm::json::Object *token = object->getObject("bos_token"))
    bosText = token->getString("content");
  if (!bosText)
    return llvm::createStringError(
        config + ": add_bos_token is set but there is no bos_token");
  auto ids = (*tokenizer)->encode(*bosText);
  if (!ids || ids->size() != 1) {
    if (!ids)
      llvm::consumeError(ids.takeError());
    return llvm::createStringError(config + ": the bos_token '" + *bosText +
                                   "' is not one token of " +
                                   (*tokenizer)->path());
  }
  (*tokenizer)->bos = ids->front();
  return tokenizer;
}

//===----------------------------------------------------------------------===//
// Word level (vocab.json)
//===----------------------------------------------------------------------===//

namespace {
class WordLevel : public Tokenizer {
public:
  llvm::StringMap<int64_t> ids;
  std::map<int64_t, std::string> words;

  Expected<std::vector<int64_t>> encode(StringRef text) const override {
    if (auto bad = findInvalidUtf8(text))
      return llvm::createStringError(
          llvm::formatv("the text is not valid UTF-8 (byte {0})", *bad));
    llvm::SmallVector<StringRef> split;
    llvm::SplitString(text, split, " \t\n\r");
    std::vector<int64_t> out;
    for (auto [i, word] : llvm::enumerate(split)) {
      auto it = ids.find(word);
      if (it == ids.end())
        return llvm::createStringError(llvm::formatv(
            "'{0}' (word {1}) is not in the vocabulary {2}", word, i, file));
      out.push_back(it->second);
    }
    return out;
  }

  std::string decodeBytes(llvm::ArrayRef<int64_t> tokens) const override {
    std::string out;
    for (int64_t id : tokens)
      if (auto it = words.find(id); it != words.end())
        out += (out.empty() ? "" : " ") + it->second;
    return out;
  }

  std::string tokenText(int64_t id) const override {
    auto it = words.find(id);
    return it == words.end() ? llvm::formatv("<{0}>", id).str() : it->second;
  }

  int64_t size() const override {
    return words.empty() ? 0 : words.rbegin()->first + 1;
  }
  StringRef kind() const override { return "word-level"; }
  bool isWordLevel() const override { return true; }
};
} // namespace

Expected<std::unique_ptr<Tokenizer>>
mlir::glint::text::openWordLevel(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return llvm::createStringError(path + ": " + buffer.getError().message());
  auto parsed = mlir::glint::runtime::parseJSON((*buffer)->getBuffer());
  if (!parsed)
    return llvm::createStringError(
        path + ": invalid JSON: " + llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
  if (object && object->getObject("word_to_id"))
    object = object->getObject("word_to_id");
  if (!object)
    return llvm::createStringError(
        path + ": unknown tokenizer type (expected an object mapping words "
               "to token ids)");
  auto vocab = std::make_unique<WordLevel>();
  vocab->file = path.str();
  for (const auto &[word, value] : *object) {
    auto id = value.getAsInteger();
    if (!id || *id < 0)
      return llvm::createStringError(path + ": the id of '" + word.str() +
                                     "' is not a non-negative integer");
    vocab->ids[word.str()] = *id;
    vocab->words[*id] = word.str();
  }
  return vocab;
}

//===----------------------------------------------------------------------===//
// RWKV world vocabularies
//===----------------------------------------------------------------------===//

namespace {
class RwkvVocab : public Tokenizer {
public:
  llvm::StringMap<int64_t> ids;
  std::vector<std::optional<std::string>> tokens; // By id.
  size_t longest = 0;

  Expected<std::vector<int64_t>> encode(StringRef text) const override {
    if (auto bad = findInvalidUtf8(text))
      return llvm::createStringError(
          llvm::formatv("the text is not valid UTF-8 (byte {0})", *bad));
    // Greedy: the longest token that the bytes at `i` start with.
    std::vector<int64_t> out;
    for (size_t i = 0; i < text.size();) {
      size_t n = std::min(longest, text.size() - i);
      for (; n > 0; --n)
        if (auto it = ids.find(text.substr(i, n)); it != ids.end()) {
          out.push_back(it->second);
          break;
        }
      if (n == 0)
        return llvm::createStringError(llvm::formatv(
            "byte {0} of the text is in no token of {1}", i, file));
      i += n;
    }
    return out;
  }

  std::string decodeBytes(llvm::ArrayRef<int64_t> list) const override {
    std::string out;
    for (int64_t id : list)
      if (id >= 0 && id < static_cast<int64_t>(tokens.size()) && tokens[id])
        out += *tokens[id];
    return out;
  }

  int64_t size() const override { return tokens.size(); }
  StringRef kind() const override { return "RWKV world"; }
};

/// A Python string or bytes literal, as repr() writes them (the
/// vocabulary's second column); its UTF-8 bytes.
Expected<std::string> parsePythonLiteral(StringRef s) {
  bool isBytes = s.consume_front("b");
  if (s.size() < 2 || (s.front() != '\'' && s.front() != '"') ||
      s.back() != s.front())
    return llvm::createStringError("not a quoted literal");
  s = s.drop_front().drop_back();
  std::string out;
  while (!s.empty()) {
    char c = s.front();
    s = s.drop_front();
    if (c != '\\') {
      out += c;
      continue;
    }
    if (s.empty())
      return llvm::createStringError("a lone backslash");
    char e = s.front();
    s = s.drop_front();
    auto hex = [&](size_t digits) -> Expected<uint32_t> {
      uint32_t v;
      if (s.size() < digits || s.take_front(digits).getAsInteger(16, v))
        return llvm::createStringError("a bad \\x, \\u or \\U escape");
      s = s.drop_front(digits);
      return v;
    };
    switch (e) {
    case 'n':
      out += '\n';
      break;
    case 't':
      out += '\t';
      break;
    case 'r':
      out += '\r';
      break;
    case 'a':
      out += '\a';
      break;
    case 'b':
      out += '\b';
      break;
    case 'f':
      out += '\f';
      break;
    case 'v':
      out += '\v';
      break;
    case '\\':
      out += '\\';
      break;
    case '\'':
      out += '\'';
      break;
    case '"':
      out += '"';
      break;
    case 'x': {
      auto v = hex(2);
      if (!v)
        return v.takeError();
      if (isBytes)
        out += static_cast<char>(*v);
      else
        appendUtf8(out, *v);
      break;
    }
    case 'u':
    case 'U': {
      if (isBytes)
        return llvm::createStringError("\\u in a bytes literal");
      auto v = hex(e == 'u' ? 4 : 8);
      if (!v)
        return v.takeError();
      if (*v > 0x10FFFF || (*v >= 0xD800 && *v <= 0xDFFF))
        return llvm::createStringError("an escape that is no character");
      appendUtf8(out, *v);
      break;
    }
    default:
      if (e >= '0' && e <= '7') { // Up to three octal digits.
        uint32_t v = e - '0';
        for (int k = 0;
             k < 2 && !s.empty() && s.front() >= '0' && s.front() <= '7';
             ++k, s = s.drop_front())
          v = v * 8 + (s.front() - '0');
        if (isBytes)
          out += static_cast<char>(v);
        else
          appendUtf8(out, v);
        break;
      }
      return llvm::createStringError("an unknown escape \\" +
                                     std::string(1, e));
    }
  }
  return out;
}
} // namespace

Expected<std::unique_ptr<Tokenizer>>
mlir::glint::text::openRwkvVocab(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return llvm::createStringError(path + ": " + buffer.getError().message());
  auto vocab = std::make_unique<RwkvVocab>();
  vocab->file = path.str();
  StringRef rest = (*buffer)->getBuffer();
  for (int64_t line = 1; !rest.empty(); ++line) {
    StringRef text;
    std::tie(text, rest) = rest.split('\n');
    text = text.rtrim("\r");
    if (text.trim().empty())
      continue;
    size_t first = text.find(' '), last = text.rfind(' ');
    int64_t id;
    size_t length;
    auto bad = [&](const llvm::Twine &why) {
      return llvm::createStringError(
          llvm::formatv("{0}:{1}: unknown tokenizer type: not an RWKV "
                        "vocabulary line `<id> <literal> <length>` ({2})",
                        path, line, why.str()));
    };
    if (first == StringRef::npos || first == last)
      return bad("fewer than three fields");
    if (text.take_front(first).getAsInteger(10, id) || id < 0)
      return bad("the id is not an integer");
    if (id > kMaxTokenId)
      return bad(
          llvm::formatv("the id {0} is larger than {1}", id, kMaxTokenId));
    if (text.drop_front(last + 1).getAsInteger(10, length))
      return bad("the length is not an integer");
    auto token = parsePythonLiteral(text.slice(first + 1, last).trim());
    if (!token)
      return bad(llvm::toString(token.takeError()));
    if (token->size() != length)
      return bad(llvm::formatv("the token has {0} bytes, not {1}",
                               token->size(), length));
    if (token->empty())
      return bad("an empty token");
    if (!vocab->ids.try_emplace(*token, id).second)
      return bad("the token is listed twice");
    if (id >= static_cast<int64_t>(vocab->tokens.size()))
      vocab->tokens.resize(id + 1);
    if (vocab->tokens[id])
      return bad(llvm::formatv("id {0} is listed twice", id));
    vocab->tokens[id] = *token;
    vocab->longest = std::max(vocab->longest, token->size());
  }
  if (vocab->ids.empty())
    return llvm::createStringError(path + ": an empty vocabulary");
  return vocab;
}
