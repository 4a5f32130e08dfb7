//===- InputLimits.cpp - nesting limits of the text formats glint reads ---===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/InputLimits.h"

#include "llvm/ADT/APInt.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace mlir::glint::runtime;

namespace {

/// Line and column (both from 1) of byte `offset` of `text`.
std::pair<size_t, size_t> lineColumn(llvm::StringRef text, size_t offset) {
  llvm::StringRef before = text.take_front(offset);
  size_t line = before.count('\n') + 1;
  size_t lastNewline = before.rfind('\n');
  size_t column =
      lastNewline == llvm::StringRef::npos ? offset + 1 : offset - lastNewline;
  return {line, column};
}

/// The index of the closing quote of the string opening at `start`, or
/// text.size() if it runs to the end.
size_t skipString(llvm::StringRef text, size_t start) {
  size_t i = start + 1;
  while (i < text.size() && text[i] != '"')
    i += text[i] == '\\' ? 2 : 1;
  return std::min(i, text.size());
}

/// "<source>:L:C: <message>" for byte `offset` of `text` (clamped to its
/// end).
llvm::Error errorAt(llvm::StringRef text, llvm::StringRef source, size_t offset,
                    const llvm::Twine &message) {
  auto [line, column] = lineColumn(text, std::min(offset, text.size()));
  return llvm::createStringError(llvm::Twine(source) + ":" + llvm::Twine(line) +
                                 ":" + llvm::Twine(column) + ": " + message);
}

bool isWordChar(char c) {
  return llvm::isAlnum(c) || c == '_' || c == '.' || c == '$' || c == '-';
}

/// The array keyword of a linalg op whose custom parser crashes when the
/// array after `keyword =` does not parse (an integer list), or, for
/// linalg.generic, has an element that is not a string (found by
/// fuzz-lower: `iterator_types = [7]`; `mlir-opt` 22 crashes the same
/// way); "" for any other word.
llvm::StringRef arrayKeywordOf(llvm::StringRef word) {
  if (word == "linalg.broadcast" || word == "linalg.reduce")
    return "dimensions";
  if (word == "linalg.transpose")
    return "permutation";
  if (word == "linalg.generic")
    return "iterator_types";
  return "";
}

/// Skips what MLIR's lexer skips between tokens: space, tab, newline and
/// carriage return (a form feed or vertical tab is an "unexpected
/// character" to it, and one inside `permutation = [...]` made the array
/// fail to parse and linalg.transpose's parser crash: found by fuzz-lower).
size_t skipSpaces(llvm::StringRef text, size_t i) {
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t' ||
                             text[i] == '\n' || text[i] == '\r'))
    ++i;
  return i;
}

/// Where the list whose '[' is at `i` has an element that `element`
/// refuses or lacks a ',' or ']' after one, or npos if it is a whole list.
/// `element` is called at each element's start: it moves `i` past the
/// element and returns npos, or returns where the element is wrong.
size_t badList(llvm::StringRef text, size_t i,
               llvm::function_ref<size_t(size_t &)> element) {
  i = skipSpaces(text, i + 1);
  if (i < text.size() && text[i] == ']')
    return llvm::StringRef::npos;
  while (true) {
    if (size_t bad = element(i); bad != llvm::StringRef::npos)
      return bad;
    i = skipSpaces(text, i);
    if (i < text.size() && text[i] == ']')
      return llvm::StringRef::npos;
    if (i >= text.size() || text[i] != ',')
      return i;
    i = skipSpaces(text, i + 1);
  }
}

/// Where the integer array `[a, b, ...]` (DenseI64ArrayAttr's syntax:
/// decimal or hexadecimal integers, a sign allowed, each fitting in 64 bits:
/// a larger one fails to parse as well, found by fuzz-lower) starting at `i`
/// stops being one, or npos if it is one.
size_t badIntegerArray(llvm::StringRef text, size_t i) {
  if (i >= text.size() || text[i] != '[')
    return i;
  return badList(text, i, [&](size_t &at) {
    bool negative = at < text.size() && text[at] == '-';
    if (negative)
      ++at;
    size_t digits = at;
    bool hex = text.substr(at).starts_with("0x");
    if (hex)
      for (at += 2; at < text.size() && llvm::isHexDigit(text[at]);)
        ++at;
    else
      while (at < text.size() && llvm::isDigit(text[at]))
        ++at;
    if (at == digits || (at < text.size() && isWordChar(text[at])))
      return at;
    // Magnitudes up to 2^63 - 1, or 2^63 when negative.
    llvm::APInt magnitude;
    if (text.slice(digits + (hex ? 2 : 0), at)
            .getAsInteger(hex ? 16 : 10, magnitude) ||
        (magnitude.getActiveBits() > 63 &&
         !(negative && magnitude.getActiveBits() == 64 &&
           magnitude.isPowerOf2())))
      return digits;
    return llvm::StringRef::npos;
  });
}

/// Where the array of strings `["a", "b", ...]` starting at `i` has an
/// element that is not a string, or npos if it has none (anything other
/// than an array there is left to the parser, which reports it).
size_t badStringArray(llvm::StringRef text, size_t i) {
  if (i >= text.size() || text[i] != '[')
    return llvm::StringRef::npos;
  return badList(text, i, [&](size_t &at) {
    if (at >= text.size() || text[at] != '"')
      return at;
    at = skipString(text, at) + 1;
    return llvm::StringRef::npos;
  });
}

/// Whether `word` names an op with a reassociation list ([[0], [1, 2]]):
/// MLIR 22's verifier of tensor.expand_shape dereferences an empty group
/// (found by fuzz-lower; `mlir-opt` 22 crashes the same way). An empty
/// group is never valid, so it is refused in all four ops.
bool hasReassociation(llvm::StringRef word) {
  return word == "tensor.expand_shape" || word == "tensor.collapse_shape" ||
         word == "memref.expand_shape" || word == "memref.collapse_shape";
}

/// Where the list of integer lists starting at `i` has an empty group
/// (`[[0], []]`), or npos if it has none or is no such list (the parser
/// reports the rest).
size_t emptyGroup(llvm::StringRef text, size_t i) {
  if (i >= text.size() || text[i] != '[')
    return llvm::StringRef::npos;
  i = skipSpaces(text, i + 1);
  while (i < text.size() && text[i] == '[') {
    size_t group = i;
    i = skipSpaces(text, i + 1);
    if (i < text.size() && text[i] == ']')
      return group;
    while (i < text.size() && text[i] != ']' && text[i] != '[')
      ++i;
    if (i >= text.size() || text[i] != ']')
      return llvm::StringRef::npos;
    i = skipSpaces(text, i + 1);
    if (i >= text.size() || text[i] != ',')
      return llvm::StringRef::npos;
    i = skipSpaces(text, i + 1);
  }
  return llvm::StringRef::npos;
}

/// The list after `word` at [wordEnd...) that emptyGroup checks: in the
/// custom form of a reassociation op the one after its operand (`%x
/// [[0], [1, 2]]`), in the generic form the one after `reassociation =`;
/// npos for other words.
size_t reassociationAfter(llvm::StringRef text, llvm::StringRef word,
                          size_t wordEnd) {
  size_t i = skipSpaces(text, wordEnd);
  if (word == "reassociation") {
    if (i >= text.size() || text[i] != '=')
      return llvm::StringRef::npos;
    return skipSpaces(text, i + 1);
  }
  if (!hasReassociation(word) || i >= text.size() || text[i] != '%')
    return llvm::StringRef::npos;
  for (++i; i < text.size() && (isWordChar(text[i]) || text[i] == '#');)
    ++i;
  return skipSpaces(text, i);
}

} // namespace

llvm::Expected<llvm::json::Value>
mlir::glint::runtime::parseJSON(llvm::StringRef text, unsigned maxDepth) {
  unsigned depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      i = skipString(text, i);
    } else if (c == '[' || c == '{') {
      if (++depth > maxDepth) {
        auto [line, column] = lineColumn(text, i);
        return llvm::createStringError(
            "nested deeper than " + llvm::Twine(maxDepth) + " levels at line " +
            llvm::Twine(line) + ", column " + llvm::Twine(column));
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return llvm::json::parse(text);
}

llvm::Error mlir::glint::runtime::checkIRBeforeParsing(llvm::StringRef text,
                                                       llvm::StringRef source,
                                                       unsigned maxDepth) {
  unsigned depth = 0;
  // After a linalg op with a crashing custom parser: the keyword its array
  // follows, and the op.
  llvm::StringRef pendingKeyword, pendingOp;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    char next = i + 1 < text.size() ? text[i + 1] : '\0';
    char previous = i > 0 ? text[i - 1] : '\0';
    if (isWordChar(c) && !isWordChar(previous)) {
      size_t end = i;
      while (end < text.size() && isWordChar(text[end]))
        ++end;
      llvm::StringRef word = text.slice(i, end);
      if (size_t list = reassociationAfter(text, word, end);
          list != llvm::StringRef::npos) {
        if (size_t group = emptyGroup(text, list);
            group != llvm::StringRef::npos) {
          return errorAt(
              text, source, group,
              "empty group in the reassociation of " +
                  (word == "reassociation" ? llvm::StringRef("an op") : word));
        }
      }
      if (!pendingKeyword.empty() && word == pendingKeyword) {
        size_t equal = skipSpaces(text, end);
        if (equal < text.size() && text[equal] == '=') {
          size_t array = skipSpaces(text, equal + 1);
          bool strings = pendingKeyword == "iterator_types";
          size_t bad = strings ? badStringArray(text, array)
                               : badIntegerArray(text, array);
          if (bad != llvm::StringRef::npos) {
            return errorAt(text, source, bad,
                           llvm::Twine("expected a list of ") +
                               (strings ? "strings" : "integers") +
                               " in [...] after '" + pendingKeyword +
                               " =' of " + pendingOp);
          }
        }
        pendingKeyword = "";
      } else if (llvm::StringRef keyword = arrayKeywordOf(word);
                 !keyword.empty()) {
        pendingKeyword = keyword;
        pendingOp = word;
      }
      i = end - 1;
    } else if (c == '"') {
      i = skipString(text, i);
    } else if (c == '/' && next == '/') {
      i = std::min(text.find('\n', i), text.size());
    } else if (c == '(' || c == '[' || c == '{' || (c == '<' && next != '=')) {
      if (++depth > maxDepth) {
        return errorAt(text, source, i,
                       "IR nested deeper than " + llvm::Twine(maxDepth) +
                           " levels");
      }
    } else if ((c == ')' || c == ']' || c == '}' ||
                (c == '>' && previous != '-' && next != '=')) &&
               depth > 0) {
      --depth;
    }
  }
  return llvm::Error::success();
}

llvm::Error mlir::glint::runtime::checkIRFileBeforeParsing(llvm::StringRef path,
                                                           unsigned maxDepth) {
  if (path == "-")
    return llvm::Error::success();
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return llvm::Error::success();
  return checkIRBeforeParsing((*buffer)->getBuffer(), path, maxDepth);
}
