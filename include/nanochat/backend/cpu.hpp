#pragma once
// Everything of the Cpu backend: include this, then call ops with a Cpu.
#include "nanochat/backend/cpu/activation.hpp"
#include "nanochat/backend/cpu/attention.hpp"
#include "nanochat/backend/cpu/attention_cached.hpp"
#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/cross_entropy.hpp"
#include "nanochat/backend/cpu/embedding.hpp"
#include "nanochat/backend/cpu/gemm.hpp"
#include "nanochat/backend/cpu/linear_small.hpp"
#include "nanochat/backend/cpu/optim_ops.hpp"
#include "nanochat/backend/cpu/random.hpp"
#include "nanochat/backend/cpu/rmsnorm.hpp"
#include "nanochat/backend/cpu/rotary.hpp"
