# Finds Debian's yaml-cpp (libyaml-cpp-dev, with its pkg-config file) for the CORE eval bundle's
# core.yaml (eval/core_bundle.hpp): base_eval and the engine tests. Sets the global target
# PkgConfig::NANOCHAT_YAML, or stops with the package to install.
if(TARGET PkgConfig::NANOCHAT_YAML)
  return()
endif()
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(NANOCHAT_YAML QUIET IMPORTED_TARGET GLOBAL yaml-cpp)
endif()
if(NOT NANOCHAT_YAML_FOUND)
  message(FATAL_ERROR "nanochat: base_eval's CORE evaluation reads core.yaml with yaml-cpp; on Debian: "
                      "apt-get install libyaml-cpp-dev")
endif()
