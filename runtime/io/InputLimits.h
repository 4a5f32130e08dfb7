//===- InputLimits.h - nesting limits of the text formats glint reads -*- C++
//-*-===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// llvm::json and MLIR's parser descend recursively, one stack frame (or
// several) per level of nesting, and so does destroying a parsed
// json::Value: a file of a few hundred kilobytes of `[[[[...` exhausts the
// stack. Every JSON and IR input is checked here first, so that such a file
// gets an error naming where it goes too deep instead of a crash. No real
// input comes near the limits (safetensors headers and configs nest 3
// levels, glint IR about 10).
//
//===----------------------------------------------------------------------===//

#ifndef GLINT_RUNTIME_IO_INPUTLIMITS_H
#define GLINT_RUNTIME_IO_INPUTLIMITS_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

namespace mlir::glint::runtime {

/// Deepest nesting of arrays and objects a JSON input may have.
constexpr unsigned kMaxJSONDepth = 64;
/// Deepest nesting of (), [], {} and <> an IR input may have.
constexpr unsigned kMaxIRDepth = 128;

/// json::parse, after checking that `text` nests at most `maxDepth` levels.
/// Either error says where: json::parse's names the line and column, and
/// one for nesting is "nested deeper than N levels at line L, column C".
/// Callers prefix the file.
llvm::Expected<llvm::json::Value> parseJSON(llvm::StringRef text,
                                            unsigned maxDepth = kMaxJSONDepth);

/// Checks MLIR source `text` for what MLIR 22's parser would crash on
/// instead of reporting, before it is parsed:
/// - nesting deeper than `maxDepth` brackets (the parser recurses): "<source>:
///   L:C: IR nested deeper than N levels";
/// - the custom form of `linalg.broadcast` / `linalg.reduce` (`dimensions`)
///   and `linalg.transpose` (`permutation`) with something other than an
///   integer array `[0, 1]` after `=`: the ops' parser stores the failed
///   array as a null attribute and dereferences it (found by fuzz-ir;
///   `mlir-opt` 22 crashes the same way): "<source>:L:C: expected a list of
///   integers in [...] after 'dimensions =' of linalg.broadcast";
/// - an empty group in the reassociation of tensor/memref expand_shape or
///   collapse_shape, custom (`%x [[0], []]`) or generic (`reassociation =
///   [[0], []]`) form: the verifier of tensor.expand_shape dereferences it
///   (found by fuzz-lower): "<source>:L:C: empty group in the
///   reassociation of tensor.expand_shape".
/// Strings and `//` comments are skipped; `->`, `>=` and `<=` are not
/// brackets. Success otherwise: the parser reports everything else.
llvm::Error checkIRBeforeParsing(llvm::StringRef text, llvm::StringRef source,
                                 unsigned maxDepth = kMaxIRDepth);

/// checkIRBeforeParsing on the file at `path` ("-": stdin is not read, so that
/// the parser still can). A file that cannot be read passes: the parser
/// that reads it next reports that better.
llvm::Error checkIRFileBeforeParsing(llvm::StringRef path,
                                     unsigned maxDepth = kMaxIRDepth);

} // namespace mlir::glint::runtime

#endif // GLINT_RUNTIME_IO_INPUTLIMITS_H
