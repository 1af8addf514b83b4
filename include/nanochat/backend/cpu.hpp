#pragma once
// Everything of the Cpu backend: include this, then call ops with a Cpu.
#include "nanochat/backend/cpu/cpu.hpp"
#include "nanochat/backend/cpu/gemm.hpp"
#include "nanochat/backend/cpu/random.hpp"
#include "nanochat/backend/cpu/rmsnorm.hpp"
