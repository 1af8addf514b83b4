# Finds Debian's cpp-httplib (libcpp-httplib-dev: a compiled library with its pkg-config file,
# built with OpenSSL, zlib and brotli, whose defines the header needs) for examples/chat_web and
# its tests. Sets NANOCHAT_HTTPLIB_FOUND and the global target PkgConfig::NANOCHAT_HTTPLIB.
if(TARGET PkgConfig::NANOCHAT_HTTPLIB)
  set(NANOCHAT_HTTPLIB_FOUND ON)
  return()
endif()
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(NANOCHAT_HTTPLIB QUIET IMPORTED_TARGET GLOBAL cpp-httplib)
endif()
if(NOT NANOCHAT_HTTPLIB_FOUND)
  message(STATUS "nanochat: cpp-httplib not found (Debian: apt-get install libcpp-httplib-dev); chat_web is not built")
endif()
