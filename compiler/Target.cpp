//===- Target.cpp - the machine glint compiles for ------------------------===//
//
// Part of the glint project.
//
//===----------------------------------------------------------------------===//

#include "compiler/Target.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"
#include "llvm/TargetParser/Triple.h"

#include <cstdlib>
#include <memory>
#include <thread>

using namespace mlir::glint;

int64_t compiler::defaultThreads() {
  // OpenMP reads the first entry of a nested list ("4,2").
  if (const char *env = std::getenv("OMP_NUM_THREADS")) {
    int64_t threads = 0;
    if (!llvm::StringRef(env).split(',').first.trim().getAsInteger(10,
                                                                   threads) &&
        threads > 0)
      return threads;
  }
  return std::max<int64_t>(1, std::thread::hardware_concurrency());
}

/// f32 lanes of the widest vector unit a CPU with these features has.
static int64_t vectorWidthOf(bool avx512f, bool avx) {
  return avx512f ? 16 : avx ? 8 : 4;
}

TargetOptions compiler::hostTarget() {
  TargetOptions target;
  target.triple = llvm::sys::getProcessTriple();
  target.cpu = llvm::sys::getHostCPUName().str();
  llvm::StringMap<bool> hostFeatures = llvm::sys::getHostCPUFeatures();
  llvm::SubtargetFeatures features;
  for (const auto &[feature, enabled] : hostFeatures)
    features.AddFeature(feature, enabled);
  target.features = features.getString();
  target.avx512 = hostFeatures.lookup("avx512f");
  target.vectorWidth = vectorWidthOf(
      target.avx512, hostFeatures.lookup("avx") || hostFeatures.lookup("avx2"));
  target.threads = defaultThreads();
  return target;
}

/// A named CPU of the host's architecture, its features as LLVM knows them.
static llvm::Expected<TargetOptions> namedCpu(llvm::StringRef cpu) {
  llvm::InitializeNativeTarget();
  TargetOptions target;
  target.triple = llvm::sys::getProcessTriple();
  target.cpu = cpu.str();
  llvm::Triple triple(target.triple);
  std::string error;
  const llvm::Target *llvmTarget =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!llvmTarget)
    return llvm::createStringError("no LLVM target for " + target.triple +
                                   ": " + error);
  std::unique_ptr<llvm::MCSubtargetInfo> info(
      llvmTarget->createMCSubtargetInfo(triple, cpu, ""));
  if (!info || !info->isCPUStringValid(cpu))
    return llvm::createStringError(
        "unknown CPU '" + cpu + "' for " + target.triple +
        " (use an LLVM CPU name such as x86-64-v3, haswell, skylake-avx512 "
        "or znver4, or 'native')");
  // The CPU's own features: an empty feature string leaves them to LLVM.
  target.avx512 = info->checkFeatures("+avx512f");
  target.vectorWidth =
      vectorWidthOf(target.avx512, info->checkFeatures("+avx"));
  target.threads = compiler::defaultThreads();
  return target;
}

llvm::Expected<TargetOptions> compiler::makeTarget(llvm::StringRef cpu,
                                                   int64_t vectorWidth,
                                                   int64_t threads) {
  llvm::Expected<TargetOptions> target =
      cpu.empty() || cpu == "native" || cpu == "host" ? hostTarget()
                                                      : namedCpu(cpu);
  if (!target)
    return target.takeError();
  if (vectorWidth != 0) {
    if (vectorWidth != 4 && vectorWidth != 8 && vectorWidth != 16)
      return llvm::createStringError(llvm::formatv(
          "--vector-width must be 4, 8 or 16 (f32 lanes), not {0}",
          vectorWidth));
    target->vectorWidth = vectorWidth;
  }
  if (threads < 0)
    return llvm::createStringError(
        llvm::formatv("--threads must be positive, not {0}", threads));
  if (threads > 0)
    target->threads = threads;
  return target;
}

std::string compiler::findCudaToolkit() {
  auto hasPtxas = [](llvm::StringRef dir) {
    llvm::SmallString<128> path(dir);
    llvm::sys::path::append(path, "bin", "ptxas");
    return llvm::sys::fs::can_execute(path);
  };
  for (const char *variable : {"CUDA_HOME", "CUDA_PATH"})
    if (const char *dir = std::getenv(variable); dir && hasPtxas(dir))
      return dir;
  if (auto ptxas = llvm::sys::findProgramByName("ptxas")) {
    llvm::StringRef dir =
        llvm::sys::path::parent_path(llvm::sys::path::parent_path(*ptxas));
    if (hasPtxas(dir))
      return dir.str();
  }
  if (hasPtxas("/usr/local/cuda"))
    return "/usr/local/cuda";
  return "";
}

llvm::Error compiler::makeCudaTarget(TargetOptions &target,
                                     llvm::StringRef gpuArch,
                                     llvm::StringRef binary) {
  unsigned capability = 0;
  if (!gpuArch.consume_front("sm_") || gpuArch.getAsInteger(10, capability) ||
      capability < 50)
    return llvm::createStringError(
        "--gpu-arch must name a compute capability from sm_50 on (sm_80 for "
        "A100, sm_90 for H100/H200), not '" +
        gpuArch + "'");
  target.kind = TargetOptions::Kind::Cuda;
  target.gpuArch = ("sm_" + llvm::Twine(capability)).str();
  target.cudaToolkit = findCudaToolkit();
  if (binary == "auto") {
    binary = target.cudaToolkit.empty() ? "isa" : "fatbin";
  } else if (binary != "isa" && binary != "bin" && binary != "fatbin") {
    return llvm::createStringError(
        "--gpu-binary must be auto, isa (PTX), bin (cubin) or fatbin, not '" +
        binary + "'");
  } else if (binary != "isa" && target.cudaToolkit.empty()) {
    return llvm::createStringError(
        "--gpu-binary=" + binary +
        " needs the CUDA toolkit's ptxas, which is not on PATH, in "
        "$CUDA_HOME or in /usr/local/cuda; --gpu-binary=isa embeds PTX "
        "instead, which the driver compiles when the model is loaded");
  }
  target.gpuBinary = binary.str();
  return llvm::Error::success();
}
