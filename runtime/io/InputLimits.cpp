//===- InputLimits.cpp - nesting limits of the text formats glint reads ---===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/InputLimits.h"

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

llvm::Error mlir::glint::runtime::checkIRNesting(llvm::StringRef text,
                                                 llvm::StringRef source,
                                                 unsigned maxDepth) {
  unsigned depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    char next = i + 1 < text.size() ? text[i + 1] : '\0';
    char previous = i > 0 ? text[i - 1] : '\0';
    if (c == '"') {
      i = skipString(text, i);
    } else if (c == '/' && next == '/') {
      i = std::min(text.find('\n', i), text.size());
    } else if (c == '(' || c == '[' || c == '{' || (c == '<' && next != '=')) {
      if (++depth > maxDepth) {
        auto [line, column] = lineColumn(text, i);
        return llvm::createStringError(
            llvm::Twine(source) + ":" + llvm::Twine(line) + ":" +
            llvm::Twine(column) + ": IR nested deeper than " +
            llvm::Twine(maxDepth) + " levels");
      }
    } else if ((c == ')' || c == ']' || c == '}' ||
                (c == '>' && previous != '-' && next != '=')) &&
               depth > 0) {
      --depth;
    }
  }
  return llvm::Error::success();
}

llvm::Error mlir::glint::runtime::checkIRFileNesting(llvm::StringRef path,
                                                     unsigned maxDepth) {
  if (path == "-")
    return llvm::Error::success();
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return llvm::Error::success();
  return checkIRNesting((*buffer)->getBuffer(), path, maxDepth);
}
