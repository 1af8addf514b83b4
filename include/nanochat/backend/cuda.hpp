#pragma once
// Everything of the Cuda backend that needs no CUDA toolkit: the backend, its ops and the
// emulated device. The real device is in cuda/real_device.hpp (needs cudart and cuBLASLt).
#include "nanochat/backend/cuda/attention_backward.hpp"
#include "nanochat/backend/cuda/attention_forward.hpp"
#include "nanochat/backend/cuda/cuda.hpp"
#include "nanochat/backend/cuda/emulated_device.hpp"
#include "nanochat/backend/cuda/gemm.hpp"
#include "nanochat/backend/cuda/random.hpp"
#include "nanochat/backend/cuda/rmsnorm.hpp"
