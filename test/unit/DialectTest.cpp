//===- DialectTest.cpp - unit tests of the glint dialect C++ API ----------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// What lit cannot see: the C++ accessors later passes rely on, and ops built
// programmatically (as glint-import will) going through the verifier.
//
//===----------------------------------------------------------------------===//

#include "dialect/GlintDialect.h"
#include "dialect/GlintOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::glint;

namespace {
class GlintDialectTest : public ::testing::Test {
protected:
  GlintDialectTest() {
    context.loadDialect<GlintDialect, func::FuncDialect, tensor::TensorDialect,
                        ml_program::MLProgramDialect>();
  }

  RankedTensorType tensor(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, Float32Type::get(&context));
  }

  /// Creates a function whose arguments have the given types and returns
  /// its entry block arguments, with the builder inside the body.
  SmallVector<Value> makeArgs(ArrayRef<Type> types) {
    module = ModuleOp::create(UnknownLoc::get(&context));
    OpBuilder builder(&context);
    builder.setInsertionPointToEnd(module->getBody());
    auto fn = func::FuncOp::create(builder, UnknownLoc::get(&context), "f",
                                   builder.getFunctionType(types, {}));
    Block *entry = fn.addEntryBlock();
    b = std::make_unique<OpBuilder>(&context);
    b->setInsertionPointToStart(entry);
    return SmallVector<Value>(entry->getArguments());
  }

  /// Verifies `op` and returns the first error message, or "" on success.
  std::string verifyMessage(Operation *op) {
    std::string message;
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      if (message.empty())
        message = diag.str();
      return success();
    });
    if (succeeded(verify(op)))
      return "";
    return message;
  }

  MLIRContext context;
  OwningOpRef<ModuleOp> module;
  std::unique_ptr<OpBuilder> b;
};

TEST_F(GlintDialectTest, Mamba1RecurrenceBuiltProgrammaticallyVerifies) {
  auto args = makeArgs({tensor({2, 7, 1, 5}), tensor({2, 7, 1, 5}),
                        tensor({2, 7, 12, 1}), tensor({12, 5}),
                        tensor({2, 7, 12}), tensor({12})});
  auto rec = RecurrenceOp::create(
      *b, UnknownLoc::get(&context), tensor({2, 7, 12, 1}), Type(), args[0],
      args[1], args[2], args[3], args[4], Value(), args[5], Value(),
      /*reverse=*/false, /*normalize=*/false);
  EXPECT_EQ(verifyMessage(rec), "");
  EXPECT_EQ(rec.getDecayForm(), RecurrenceOp::DecayForm::StaticPerKey);
  EXPECT_EQ(rec.getNumHeads(), 12);
  EXPECT_EQ(rec.getNumKeyGroups(), 1);
  EXPECT_EQ(rec.getKeySize(), 5);
  EXPECT_EQ(rec.getValueSize(), 1);
}

TEST_F(GlintDialectTest, RecurrenceRejectsDeltaWithDataDependentDecay) {
  auto args = makeArgs({tensor({1, 4, 2, 3}), tensor({1, 4, 2, 3}),
                        tensor({1, 4, 2, 8}), tensor({1, 4, 2, 3}),
                        tensor({1, 4, 2})});
  auto rec = RecurrenceOp::create(
      *b, UnknownLoc::get(&context), tensor({1, 4, 2, 8}), Type(), args[0],
      args[1], args[2], args[3], args[4], Value(), Value(), Value(), false,
      false);
  EXPECT_NE(verifyMessage(rec).find(
                "with 'delta' the log-decay must be time-invariant"),
            std::string::npos)
      << verifyMessage(rec);
}

TEST_F(GlintDialectTest, NormalizedStateCarriesDenominatorAndMax) {
  // RWKV-4: 6 channels, K = V = 1, state [B, H, 1, V + 2].
  auto args = makeArgs({tensor({1, 5, 6, 1}), tensor({1, 5, 6, 1}),
                        tensor({6}), tensor({6, 1}), tensor({1, 6, 1, 3})});
  Location loc = UnknownLoc::get(&context);
  auto good = RecurrenceOp::create(
      *b, loc, tensor({1, 5, 6, 1}), tensor({1, 6, 1, 3}), Value(), args[0],
      args[1], args[2], Value(), args[3], Value(), args[4], false, true);
  EXPECT_EQ(verifyMessage(good), "");
  auto bad = RecurrenceOp::create(
      *b, loc, tensor({1, 5, 6, 1}), tensor({1, 6, 1, 1}), Value(), args[0],
      args[1], args[2], Value(), args[3], Value(), args[4], false, true);
  EXPECT_NE(verifyMessage(bad).find("'final_state' dim 3 (value + 2) is 1, "
                                    "expected 3"),
            std::string::npos)
      << verifyMessage(bad);
}

TEST_F(GlintDialectTest, LinearBlockDiagonalLayouts) {
  auto args = makeArgs({tensor({2, 3, 8}), tensor({4, 2, 5}),
                        tensor({4, 5, 2}), tensor({4, 3, 5})});
  Location loc = UnknownLoc::get(&context);
  auto inOut = WeightLayoutAttr::get(&context, WeightLayout::in_out);
  // [blocks, in/blocks, out/blocks] = [4, 2, 5]: 8 features -> 20.
  auto blockInOut = LinearOp::create(*b, loc, tensor({2, 3, 20}), args[0],
                                     args[1], Value(), inOut);
  EXPECT_EQ(verifyMessage(blockInOut), "");
  EXPECT_EQ(blockInOut.getNumBlocks(), 4);
  EXPECT_TRUE(blockInOut.isInOut());
  // The same block-diagonal map stored [blocks, out/blocks, in/blocks].
  auto blockOutIn = LinearOp::create(*b, loc, tensor({2, 3, 20}), args[0],
                                     args[2], Value(), WeightLayoutAttr());
  EXPECT_EQ(verifyMessage(blockOutIn), "");
  EXPECT_FALSE(blockOutIn.isInOut());
  auto wrong = LinearOp::create(*b, loc, tensor({2, 3, 20}), args[0], args[3],
                                Value(), inOut);
  EXPECT_NE(verifyMessage(wrong).find("input features (8) do not match the "
                                      "weight's input size (12)"),
            std::string::npos)
      << verifyMessage(wrong);
}

TEST_F(GlintDialectTest, InlineMixersPassRemovesEveryMixer) {
  const char *source = R"mlir(
    func.func @f(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32> {
      %y = glint.mixer label "outer" (%x) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
      ^bb0(%v: tensor<?x?x8xf32>):
        %a = glint.act silu %v : tensor<?x?x8xf32>
        %z = glint.mixer (%a) : tensor<?x?x8xf32> -> tensor<?x?x8xf32> {
        ^bb0(%w: tensor<?x?x8xf32>):
          %s = glint.act sigmoid %w : tensor<?x?x8xf32>
          glint.yield %s : tensor<?x?x8xf32>
        }
        glint.yield %z : tensor<?x?x8xf32>
      }
      return %y : tensor<?x?x8xf32>
    })mlir";
  OwningOpRef<ModuleOp> parsed =
      parseSourceString<ModuleOp>(source, ParserConfig(&context));
  ASSERT_TRUE(parsed);
  PassManager pm(&context);
  pm.addPass(createGlintInlineMixers());
  ASSERT_TRUE(succeeded(pm.run(*parsed)));
  int mixers = 0, acts = 0;
  parsed->walk([&](Operation *op) {
    mixers += isa<MixerOp>(op);
    acts += isa<ActOp>(op);
  });
  EXPECT_EQ(mixers, 0);
  EXPECT_EQ(acts, 2);
  EXPECT_TRUE(succeeded(verify(*parsed)));
  // The function now returns sigmoid(silu(x)).
  auto fn = *parsed->getOps<func::FuncOp>().begin();
  auto ret = cast<func::ReturnOp>(fn.getBody().front().getTerminator());
  auto outer = ret.getOperand(0).getDefiningOp<ActOp>();
  ASSERT_TRUE(outer);
  EXPECT_EQ(outer.getKind(), ActKind::sigmoid);
  auto inner = outer.getInput().getDefiningOp<ActOp>();
  ASSERT_TRUE(inner);
  EXPECT_EQ(inner.getKind(), ActKind::silu);
  EXPECT_EQ(inner.getInput(), fn.getArgument(0));
}
} // namespace
