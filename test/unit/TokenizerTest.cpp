//===- TokenizerTest.cpp - tokenizers against their references ------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// test/fixtures/tokenizers/<kind>/cases.json holds what the reference
// implementations (the `tokenizers` library, `sentencepiece`, the rwkv
// package's TRIE_TOKENIZER) made of a few hundred strings, and of random id
// lists: glint's tokenizers must give exactly the same ids and text
// (scripts/fixtures/make_tokenizers.py).
//
//===----------------------------------------------------------------------===//

#include "runtime/text/Tokenizer.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

using namespace mlir::glint::text;
using llvm::StringRef;

namespace {

std::string fixture(StringRef kind, StringRef file = "") {
  llvm::SmallString<256> path(GLINT_SOURCE_DIR);
  llvm::sys::path::append(path, "test/fixtures/tokenizers", kind, file);
  return std::string(path);
}

llvm::json::Value readJson(const std::string &path) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  EXPECT_TRUE(bool(buffer)) << path;
  if (!buffer)
    return nullptr;
  auto parsed = llvm::json::parse((*buffer)->getBuffer());
  EXPECT_TRUE(bool(parsed)) << path;
  if (!parsed) {
    llvm::consumeError(parsed.takeError());
    return nullptr;
  }
  return std::move(*parsed);
}

std::vector<int64_t> ids(const llvm::json::Value *v) {
  std::vector<int64_t> out;
  if (const llvm::json::Array *a = v ? v->getAsArray() : nullptr)
    for (const llvm::json::Value &x : *a)
      out.push_back(*x.getAsInteger());
  return out;
}

std::string show(StringRef s) {
  std::string out;
  llvm::raw_string_ostream os(out);
  os << '"';
  llvm::printEscapedString(s, os);
  os << '"';
  return out;
}

/// Every case of `<dir>/cases.json` through the tokenizer of directory
/// `dir` (chosen as for a checkpoint); the counts checked, so that an
/// empty or missing fixture cannot pass.
void checkCases(StringRef dir, StringRef expectedKind, size_t minEncode,
                size_t minDecode) {
  auto tokenizer = Tokenizer::fromDirectory(dir);
  ASSERT_TRUE(bool(tokenizer)) << llvm::toString(tokenizer.takeError());
  EXPECT_EQ((*tokenizer)->kind(), expectedKind);
  llvm::SmallString<256> casesPath(dir);
  llvm::sys::path::append(casesPath, "cases.json");
  llvm::json::Value cases = readJson(std::string(casesPath));
  const llvm::json::Object *root = cases.getAsObject();
  ASSERT_TRUE(root);
  const llvm::json::Array *encode = root->getArray("encode");
  const llvm::json::Array *decode = root->getArray("decode");
  ASSERT_TRUE(encode && decode);
  EXPECT_GE(encode->size(), minEncode);
  EXPECT_GE(decode->size(), minDecode);
  size_t failures = 0;
  for (const llvm::json::Value &c : *encode) {
    const llvm::json::Object *o = c.getAsObject();
    StringRef text = *o->getString("text");
    std::vector<int64_t> expected = ids(o->get("ids"));
    auto got = (*tokenizer)->encode(text);
    ASSERT_TRUE(bool(got)) << show(text) << ": "
                           << llvm::toString(got.takeError());
    EXPECT_EQ(*got, expected) << "encode " << show(text);
    failures += *got != expected;
  }
  for (const llvm::json::Value &c : *decode) {
    const llvm::json::Object *o = c.getAsObject();
    std::vector<int64_t> list = ids(o->get("ids"));
    if (auto hex = o->getString("bytes")) {
      std::string expected = llvm::fromHex(*hex);
      std::string got = (*tokenizer)->decodeBytes(list);
      EXPECT_EQ(got, expected) << "decodeBytes of case " << hex->str();
      failures += got != expected;
      EXPECT_EQ((*tokenizer)->decode(list), toValidUtf8(expected));
    } else {
      std::string expected = o->getString("text")->str();
      std::string got = (*tokenizer)->decode(list);
      EXPECT_EQ(got, expected) << "decode to " << show(expected);
      failures += got != expected;
    }
  }
  EXPECT_EQ(failures, 0u) << "of " << encode->size() + decode->size()
                          << " cases";
}

void checkFixture(StringRef kind, StringRef expectedKind, size_t minEncode,
                  size_t minDecode) {
  checkCases(fixture(kind), expectedKind, minEncode, minDecode);
}

TEST(TokenizerTest, ByteLevelBpeMatchesTokenizers) {
  checkFixture("bpe", "byte-level BPE", 350, 150);
}

// GPT-NeoX-20B's tokenizer.json as published (Mamba's tokenizer): 50k merges,
// runs of spaces as added tokens.
TEST(TokenizerTest, HubGptNeoxMatchesTokenizers) {
  checkFixture("neox", "byte-level BPE", 350, 150);
}

// Dev-time: more real tokenizers, too large to commit, in folders written by
// `make_tokenizers.py --extra NAME=tokenizer.json` and named in
// GLINT_EXTRA_TOKENIZERS (colon-separated).
TEST(TokenizerTest, ExtraTokenizersFromTheEnvironment) {
  const char *list = std::getenv("GLINT_EXTRA_TOKENIZERS");
  if (!list || !*list)
    GTEST_SKIP() << "GLINT_EXTRA_TOKENIZERS is not set";
  llvm::SmallVector<StringRef> dirs;
  StringRef(list).split(dirs, ':', -1, false);
  for (StringRef dir : dirs) {
    SCOPED_TRACE(dir.str());
    checkCases(dir, "byte-level BPE", 300, 150);
  }
}

TEST(TokenizerTest, SentencePieceBpeMatchesSentencepiece) {
  checkFixture("spm-bpe", "SentencePiece", 300, 150);
}

TEST(TokenizerTest, SentencePieceUnigramMatchesSentencepiece) {
  checkFixture("spm-unigram", "SentencePiece", 300, 150);
}

TEST(TokenizerTest, RwkvWorldMatchesTrieTokenizer) {
  checkFixture("rwkv", "RWKV world", 300, 150);
}

TEST(TokenizerTest, WordLevelVocabOfTheBundledModels) {
  llvm::SmallString<256> dir(GLINT_SOURCE_DIR);
  llvm::sys::path::append(dir, "models/mamba-keyword");
  auto tokenizer = Tokenizer::fromDirectory(dir);
  ASSERT_TRUE(bool(tokenizer)) << llvm::toString(tokenizer.takeError());
  EXPECT_TRUE((*tokenizer)->isWordLevel());
  // The ids against vocab.json read independently.
  llvm::json::Value vocab = readJson(std::string(dir) + "/vocab.json");
  const llvm::json::Object *map = vocab.getAsObject();
  if (map->getObject("word_to_id"))
    map = map->getObject("word_to_id");
  auto got = (*tokenizer)->encode("<bos> the river  was crimson ?");
  ASSERT_TRUE(bool(got)) << llvm::toString(got.takeError());
  std::vector<int64_t> expected;
  for (StringRef w : {"<bos>", "the", "river", "was", "crimson", "?"})
    expected.push_back(*map->getInteger(w));
  EXPECT_EQ(*got, expected);
  EXPECT_EQ((*tokenizer)->decode(*got), "<bos> the river was crimson ?");
  auto missing = (*tokenizer)->encode("the zebra");
  ASSERT_FALSE(bool(missing));
  EXPECT_NE(llvm::toString(missing.takeError())
                .find("'zebra' (word 1) is not in the vocabulary"),
            std::string::npos);
}

TEST(TokenizerTest, BadInput) {
  for (StringRef kind : {"bpe", "spm-bpe", "rwkv"}) {
    auto tokenizer = Tokenizer::fromDirectory(fixture(kind));
    ASSERT_TRUE(bool(tokenizer)) << llvm::toString(tokenizer.takeError());
    auto bad = (*tokenizer)->encode("ok \xC3\x28 then");
    ASSERT_FALSE(bool(bad)) << kind.str();
    EXPECT_EQ(llvm::toString(bad.takeError()),
              "the text is not valid UTF-8 (byte 3)");
    auto empty = (*tokenizer)->encodePrompt("");
    ASSERT_FALSE(bool(empty));
    EXPECT_EQ(llvm::toString(empty.takeError()), "the prompt is empty");
  }
}

TEST(TokenizerTest, UnknownTypes) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("glint-tok", dir));
  auto write = [&](StringRef name, StringRef contents) {
    llvm::SmallString<128> path(dir);
    llvm::sys::path::append(path, name);
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    os << contents;
    return std::string(path);
  };
  auto message = [](llvm::Expected<std::unique_ptr<Tokenizer>> t) {
    return t ? std::string("(opened)") : llvm::toString(t.takeError());
  };
  std::string wordPiece =
      write("tokenizer.json", R"({"model": {"type": "WordPiece"}})");
  EXPECT_EQ(message(Tokenizer::open(wordPiece)),
            wordPiece +
                ": unknown tokenizer type: model type 'WordPiece' (glint "
                "reads byte-level BPE tokenizer.json files, as GPT-2, "
                "GPT-NeoX and Mamba ship)");
  // From a directory, with no tokenizer.model to fall back on.
  EXPECT_NE(message(Tokenizer::fromDirectory(dir))
                .find("model type "
                      "'WordPiece'"),
            std::string::npos);
  std::string model = write("tokenizer.model", "not a protobuf");
  EXPECT_NE(message(Tokenizer::open(model))
                .find("unknown tokenizer type: not a SentencePiece model"),
            std::string::npos);
  std::string rwkv = write("rwkv_vocab.txt", "1 'a' 1\n2 oops 3\n");
  EXPECT_NE(message(Tokenizer::open(rwkv))
                .find("rwkv_vocab.txt:2: unknown tokenizer type"),
            std::string::npos);
  std::string other = write("merges.bin", "");
  EXPECT_NE(message(Tokenizer::open(other)).find("unknown tokenizer type"),
            std::string::npos);
  llvm::sys::fs::remove_directories(dir);
}

/// A vocabulary's ids index a table: an id far beyond any model's vocabulary
/// is an error naming the file, not a table of terabytes (found by
/// fuzz-vocab: one RWKV line with a ten-digit id took gigabytes and seconds).
TEST(TokenizerTest, TokenIdsAreBounded) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("glint-tok", dir));
  auto write = [&](StringRef name, StringRef contents) {
    llvm::SmallString<128> path(dir);
    llvm::sys::path::append(path, name);
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec);
    os << contents;
    return std::string(path);
  };
  auto message = [](llvm::Expected<std::unique_ptr<Tokenizer>> t) {
    return t ? std::string("(opened)") : llvm::toString(t.takeError());
  };
  std::string rwkv = write("rwkv_vocab.txt", "1 'a' 1\n99999999999 'b' 1\n");
  EXPECT_EQ(message(Tokenizer::open(rwkv)),
            rwkv + ":2: unknown tokenizer type: not an RWKV vocabulary line "
                   "`<id> <literal> <length>` (the id 99999999999 is larger "
                   "than 1048575)");
  // The largest id allowed opens.
  std::string largest = write("rwkv_vocab_largest.txt", "1048575 'a' 1\n");
  EXPECT_EQ(message(Tokenizer::open(largest)), "(opened)");

  auto bpe = [](StringRef vocab, StringRef added) {
    return (R"({"model": {"type": "BPE", "vocab": )" + vocab +
            R"(, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"},
               "added_tokens": )" +
            added + "}")
        .str();
  };
  std::string inVocab =
      write("tokenizer.json", bpe(R"({"a": 0, "b": 99999999999})", "[]"));
  EXPECT_EQ(message(Tokenizer::open(inVocab)),
            inVocab + ": the id of 'b' is larger than 1048575");
  std::string added =
      write("tokenizer.json",
            bpe(R"({"a": 0})", R"([{"id": 1048576, "content": "<x>"}])"));
  EXPECT_EQ(message(Tokenizer::open(added)),
            added + ": the id of added token '<x>' is larger than 1048575");
  llvm::sys::fs::remove_directories(dir);
}

TEST(TokenizerTest, Utf8Helpers) {
  EXPECT_EQ(findInvalidUtf8("abc"), std::nullopt);
  EXPECT_EQ(findInvalidUtf8("a\xED\xA0\x80"), 1u); // A surrogate.
  EXPECT_EQ(findInvalidUtf8("\xF0\x9F\x9A\x80 ok"), std::nullopt);
  // One U+FFFD per maximal invalid subpart.
  EXPECT_EQ(toValidUtf8("a\xF0\x9F\x9A"
                        "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(toValidUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(completeUtf8Prefix("ab\xF0\x9F\x9A"), 2u);
  EXPECT_EQ(completeUtf8Prefix("ab\xF0\x9F\x9A\x80"), 6u);
  EXPECT_EQ(completeUtf8Prefix("ab\xFF"), 3u);
}

} // namespace
