//===- ProgressTest.cpp - unit tests of the progress bar ------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//
//
// The bar is drawn on a string stream with `enabled` set, as a terminal
// would see it; the tools' bars are enabled only when stderr is one.
//
//===----------------------------------------------------------------------===//

#include "runtime/io/Progress.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include "gtest/gtest.h"

#include <chrono>
#include <thread>

using namespace mlir::glint::runtime;
using llvm::StringRef;

namespace {

TEST(Progress, SilentWhenNotDrawn) {
  std::string out;
  llvm::raw_string_ostream os(out);
  {
    ProgressBar bar("maps", 10, os, /*enabled=*/false);
    for (int i = 0; i < 10; ++i)
      bar.advance();
    bar.setStatus("busy");
    EXPECT_EQ(bar.done(), 10u);
  }
  EXPECT_EQ(out, "");
}

TEST(Progress, DrawsAndFinishes) {
  std::string out;
  llvm::raw_string_ostream os(out);
  ProgressBar bar("maps", 10, os, /*enabled=*/true,
                  std::chrono::milliseconds(0));
  for (int i = 0; i < 5; ++i)
    bar.advance();
  EXPECT_NE(out.find("maps [###############---------------]  50% 5/10"),
            std::string::npos)
      << out;
  bar.advance(5);
  bar.finish();
  EXPECT_NE(out.find("100% 10/10"), std::string::npos) << out;
  EXPECT_EQ(out.back(), '\n');
  size_t length = out.size();
  bar.finish();
  EXPECT_EQ(out.size(), length);

  // Rate-limited: a long interval draws only the first and the final state.
  std::string limited;
  llvm::raw_string_ostream ls(limited);
  {
    ProgressBar slow("slow", 1000, ls, true, std::chrono::hours(1));
    for (int i = 0; i < 1000; ++i)
      slow.advance();
  }
  EXPECT_EQ(StringRef(limited).count('\r'), 2u) << limited;
  EXPECT_NE(limited.find("1000/1000"), std::string::npos);
}

/// With an unknown total the count is shown, and a status after the time;
/// a shorter line blanks what the longer one before it left.
TEST(Progress, CountAndStatus) {
  std::string out;
  llvm::raw_string_ostream os(out);
  ProgressBar bar("compile", 0, os, /*enabled=*/true,
                  std::chrono::milliseconds(0));
  bar.setStatus("glint-vectorize-matmul");
  bar.advance(3);
  size_t first = out.rfind('\r');
  StringRef line = StringRef(out).drop_front(first + 1);
  EXPECT_TRUE(line.starts_with("compile 3 ")) << line.str();
  EXPECT_TRUE(line.ends_with("s glint-vectorize-matmul")) << line.str();
  bar.setStatus("cse");
  bar.advance();
  StringRef last = StringRef(out).drop_front(out.rfind('\r') + 1);
  EXPECT_TRUE(last.starts_with("compile 4 ")) << last.str();
  EXPECT_EQ(last.size(), line.size()) << "the longer status is blanked";
  EXPECT_EQ(last.rtrim().back(), 'e');
  EXPECT_EQ(out.find('['), std::string::npos);
}

/// A delayed bar stays hidden while the work is quick, leaving no line at
/// all, and appears once the work has taken longer than the delay.
TEST(Progress, DelayHidesQuickWork) {
  std::string out;
  llvm::raw_string_ostream os(out);
  {
    ProgressBar quick("quick", 10, os, /*enabled=*/true,
                      std::chrono::milliseconds(0), std::chrono::hours(1));
    for (int i = 0; i < 10; ++i)
      quick.advance();
    EXPECT_FALSE(quick.shown());
  }
  EXPECT_EQ(out, "");

  ProgressBar slow("slow", 4, os, /*enabled=*/true,
                   std::chrono::milliseconds(0), std::chrono::milliseconds(20));
  slow.advance();
  EXPECT_EQ(out, "");
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  slow.advance();
  EXPECT_TRUE(slow.shown());
  EXPECT_NE(out.find("slow [###############---------------]  50% 2/4"),
            std::string::npos)
      << out;
  slow.advance(2);
  slow.finish();
  EXPECT_NE(out.find("100% 4/4"), std::string::npos) << out;
  EXPECT_EQ(out.back(), '\n');
}

} // namespace
