//===- InputLimitsTest.cpp - nesting limits of JSON and IR inputs ---------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/InputLimits.h"

#include "gtest/gtest.h"

#include <string>

using namespace mlir::glint::runtime;

namespace {

std::string nested(char open, char close, unsigned depth) {
  return std::string(depth, open) + std::string(depth, close);
}

std::string errorOf(llvm::Error error) {
  return error ? llvm::toString(std::move(error)) : "";
}

std::string jsonErrorOf(llvm::StringRef text) {
  auto parsed = parseJSON(text);
  return parsed ? "" : llvm::toString(parsed.takeError());
}

TEST(InputLimitsTest, JSONAtTheLimitParses) {
  EXPECT_EQ(jsonErrorOf(nested('[', ']', kMaxJSONDepth)), "");
  std::string objects;
  for (unsigned i = 0; i < kMaxJSONDepth; ++i)
    objects += "{\"a\":";
  objects += "1" + std::string(kMaxJSONDepth, '}');
  EXPECT_EQ(jsonErrorOf(objects), "");
}

TEST(InputLimitsTest, JSONBeyondTheLimitNamesWhere) {
  std::string text = "{\n \"k\": " + nested('[', ']', kMaxJSONDepth) + "}";
  // The object is level 1, so the array's last bracket is one too many.
  std::string error = jsonErrorOf(text);
  EXPECT_NE(error.find("nested deeper than 64 levels at line 2, column " +
                       std::to_string(6 + kMaxJSONDepth)),
            std::string::npos)
      << error;
}

/// What used to exhaust the stack in json::parse.
TEST(InputLimitsTest, VeryDeepJSONIsAnErrorNotACrash) {
  EXPECT_NE(jsonErrorOf(nested('[', ']', 1'000'000)).find("nested deeper"),
            std::string::npos);
}

TEST(InputLimitsTest, BracketsInJSONStringsDoNotCount) {
  std::string text =
      "[\"" + std::string(200, '[') + "\\\"" + std::string(200, '{') + "\"]";
  EXPECT_EQ(jsonErrorOf(text), "");
}

TEST(InputLimitsTest, InvalidJSONKeepsTheParsersMessage) {
  EXPECT_NE(jsonErrorOf("{\"a\": }").find("[1:7"), std::string::npos);
}

TEST(InputLimitsTest, IRAtTheLimitPasses) {
  EXPECT_EQ(
      errorOf(checkIRBeforeParsing(nested('(', ')', kMaxIRDepth), "m.mlir")),
      "");
}

TEST(InputLimitsTest, IRBeyondTheLimitNamesWhere) {
  std::string text = "module {\n" + nested('<', '>', kMaxIRDepth) + "}";
  EXPECT_EQ(errorOf(checkIRBeforeParsing(text, "m.mlir")),
            "m.mlir:2:" + std::to_string(kMaxIRDepth) +
                ": IR nested deeper than 128 levels");
}

TEST(InputLimitsTest, ArrowsComparisonsStringsAndCommentsAreNotBrackets) {
  std::string arrows;
  for (int i = 0; i < 300; ++i)
    arrows += "(d0) -> (d0) ";
  EXPECT_EQ(errorOf(checkIRBeforeParsing(arrows, "m.mlir")), "");
  EXPECT_EQ(errorOf(checkIRBeforeParsing("\"" + std::string(300, '(') +
                                             "\" // " + std::string(300, '[') +
                                             "\n" + std::string(100, '>') +
                                             "d0 >= 0, d1 <= 2",
                                         "m.mlir")),
            "");
}

/// linalg.broadcast/reduce/transpose with something other than an array
/// after `dimensions =` / `permutation =`: MLIR 22's parser crashes there.
TEST(InputLimitsTest, LinalgArraysThatCrashTheParserAreRefused) {
  EXPECT_EQ(
      errorOf(checkIRBeforeParsing("linalg.broadcast dimensions=", "m.mlir")),
      "m.mlir:1:29: expected a list of integers in [...] after "
      "'dimensions =' of linalg.broadcast");
  // Inside the array too (the parser fails there the same way).
  for (const char *bad :
       {"linalg.transpose permutation=[", "linalg.transpose permutation=[1,",
        "linalg.transpose permutation = [1 0]",
        "linalg.transpose permutation = [1, x]",
        "linalg.transpose permutation = [1.5]",
        "linalg.transpose permutation = [-]",
        // Form feed and vertical tab are no whitespace to MLIR's lexer.
        "linalg.transpose permutation = [0, \f1]",
        "linalg.transpose permutation =\v[0, 1]",
        // Integers past 64 bits fail to parse too (found by fuzz-lower).
        "linalg.transpose permutation = [0, 88888888888888888888888]",
        "linalg.transpose permutation = [0, 9223372036854775808]",
        "linalg.transpose permutation = [0, -9223372036854775809]",
        "linalg.broadcast dimensions = [0xffffffffffffffff]"})
    EXPECT_NE(errorOf(checkIRBeforeParsing(bad, "m.mlir")), "") << bad;
  EXPECT_EQ(errorOf(checkIRBeforeParsing(
                "%r = linalg.transpose ins(%x : tensor<2x3xf32>)\n"
                "  outs(%y : tensor<3x2xf32>) permutation = 1",
                "m.mlir")),
            "m.mlir:2:44: expected a list of integers in [...] after "
            "'permutation =' of linalg.transpose");
  EXPECT_NE(errorOf(checkIRBeforeParsing(
                "linalg.reduce {arith.addf} ins(%x : tensor<4xf32>) "
                "outs(%y : tensor<f32>) dimensions = v",
                "m.mlir")),
            "");
  // linalg.generic's iterator types must be strings in its custom form
  // (found by fuzz-lower: an integer there crashes MLIR 22's parser).
  EXPECT_EQ(errorOf(checkIRBeforeParsing(
                "%r = linalg.generic {indexing_maps = [#m, #m],\n"
                "  iterator_types = [\"parallel\", 4294967296]}",
                "m.mlir")),
            "m.mlir:2:33: expected a list of strings in [...] after "
            "'iterator_types =' of linalg.generic");
  for (const char *bad :
       {"linalg.generic {iterator_types = [7]}",
        "linalg.generic {iterator_types = [#linalg.iterator_type<parallel>]}",
        "linalg.generic {iterator_types = [[1]]}",
        "linalg.generic {iterator_types = [\"parallel\" \"reduction\"]}"})
    EXPECT_NE(errorOf(checkIRBeforeParsing(bad, "m.mlir")), "") << bad;
  for (const char *good :
       {"linalg.generic {indexing_maps = [#m], iterator_types = "
        "[\"parallel\", \"reduction\"]} ins(%x : tensor<4xf32>)",
        "linalg.generic {iterator_types = [ ]}",
        "linalg.generic {iterator_types = 7}",
        "\"linalg.generic\"(%x) <{iterator_types = "
        "[#linalg.iterator_type<parallel>]}>"})
    EXPECT_EQ(errorOf(checkIRBeforeParsing(good, "m.mlir")), "") << good;
  // Well-formed: the array, a missing `=` (the parser reports it), the
  // generic form (a string), the attribute of another op, comments.
  for (const char *good :
       {"linalg.broadcast ins(%x : tensor<3xf32>) outs(%y : "
        "tensor<2x3xf32>) dimensions = [0]",
        "linalg.transpose ins(%x) outs(%y) permutation=\n  [1, 0]",
        "linalg.transpose permutation = [ 0x1 ,-2,3 ]",
        "linalg.transpose permutation = [9223372036854775807, "
        "-9223372036854775808, 0x7fffffffffffffff]",
        "linalg.reduce dimensions = []", "linalg.broadcast dimensions",
        "\"linalg.broadcast\"(%x, %y) <{dimensions = array<i64: 0>}>",
        "glint.foo {dimensions = 3}",
        "// linalg.broadcast dimensions = 3\nglint.foo {dimensions = 3}"})
    EXPECT_EQ(errorOf(checkIRBeforeParsing(good, "m.mlir")), "") << good;
}

/// An empty group in a reassociation list: MLIR 22's verifier of
/// tensor.expand_shape dereferences it (found by fuzz-lower).
TEST(InputLimitsTest, EmptyReassociationGroupsAreRefused) {
  EXPECT_EQ(errorOf(checkIRBeforeParsing(
                "%v = tensor.expand_shape %x [[0], [], [1, 2]] output_shape "
                "[%b, %l, 2, 16] : tensor<?x?x32xf32> into "
                "tensor<?x?x2x16xf32>",
                "m.mlir")),
            "m.mlir:1:35: empty group in the reassociation of "
            "tensor.expand_shape");
  for (const char *bad :
       {"tensor.collapse_shape %x [[0], [ ]] : t",
        "memref.expand_shape "
        "%arg0 [[]] output_shape",
        "memref.collapse_shape %x#1 [[0, 1],\n []]",
        "\"tensor.expand_shape\"(%x, %b) <{reassociation = [[0], []], "
        "static_output_shape = array<i64: -1, 2, 16>}>"})
    EXPECT_NE(errorOf(checkIRBeforeParsing(bad, "m.mlir")), "") << bad;
  // Well-formed, or for the parser to report: groups with indices, the
  // empty list of a rank-0 collapse, output_shape's empty list, another
  // op's nested empty list, a list of something else.
  for (const char *good :
       {"tensor.expand_shape %x [[0], [1, 2]] output_shape [%b, 2, 16]",
        "tensor.collapse_shape %x [] : tensor<1x1xf32> into tensor<f32>",
        "tensor.expand_shape %x [] output_shape []",
        "glint.foo {groups = [[0], []]}", "tensor.expand_shape %x [[0], [[]]]",
        "tensor.expand_shape %x [0, []]", "reassociation = [1, []]"})
    EXPECT_EQ(errorOf(checkIRBeforeParsing(good, "m.mlir")), "") << good;
}

} // namespace
