//===- PassProgress.cpp - the passes run, on a progress bar ---------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "compiler/PassProgress.h"

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassInstrumentation.h"

using namespace mlir;
using namespace mlir::glint::compiler;

namespace mlir::glint::compiler {
/// Forwards the end of each pass run to a PassProgress; one per pass
/// manager, which owns it.
class PassProgressInstrumentation : public PassInstrumentation {
public:
  explicit PassProgressInstrumentation(PassProgress &progress)
      : progress(progress) {}

  void runAfterPass(Pass *pass, Operation *) override {
    progress.passRan(pass);
  }
  void runAfterPassFailed(Pass *pass, Operation *) override {
    progress.passRan(pass);
  }

private:
  PassProgress &progress;
};
} // namespace mlir::glint::compiler

void PassProgress::attach(PassManager &pm) {
  pm.addInstrumentation(std::make_unique<PassProgressInstrumentation>(*this));
}

void PassProgress::setStatus(llvm::StringRef status) {
  std::lock_guard<std::mutex> lock(mutex);
  bar.setStatus(status);
  bar.advance(0);
}

void PassProgress::passRan(Pass *pass) {
  // The adaptors that run nested pass managers have no flag: the passes
  // inside them are counted instead.
  llvm::StringRef flag = pass->getArgument();
  if (flag.empty())
    return;
  std::lock_guard<std::mutex> lock(mutex);
  bar.setStatus(flag);
  bar.advance();
}
