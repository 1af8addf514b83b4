# Creates nanochat::data: the data pipeline's system libraries (zstd, snappy and zlib for parquet
# pages, libcurl for the shard downloader) on top of nanochat::nanochat. Programs that include
# nanochat/data/ headers link it; the rest of the library does not need these libraries.
if(TARGET nanochat::data)
  return()
endif()
find_path(NANOCHAT_ZSTD_INCLUDE_DIR zstd.h)
find_library(NANOCHAT_ZSTD_LIBRARY NAMES zstd)
find_path(NANOCHAT_SNAPPY_INCLUDE_DIR snappy-c.h)
find_library(NANOCHAT_SNAPPY_LIBRARY NAMES snappy)
find_package(ZLIB)
find_package(CURL)
if(NOT NANOCHAT_ZSTD_INCLUDE_DIR OR NOT NANOCHAT_ZSTD_LIBRARY OR NOT NANOCHAT_SNAPPY_INCLUDE_DIR
   OR NOT NANOCHAT_SNAPPY_LIBRARY OR NOT ZLIB_FOUND OR NOT CURL_FOUND)
  message(FATAL_ERROR "nanochat's data pipeline needs zstd, snappy, zlib and libcurl; on Debian: "
                      "apt-get install libzstd-dev libsnappy-dev zlib1g-dev libcurl4-openssl-dev")
endif()
find_package(Threads REQUIRED)
# GLOBAL, and plain library paths rather than ZLIB::ZLIB / CURL::libcurl, so the target also
# works for a project that pulls nanochat in with add_subdirectory (imported targets are
# otherwise visible only in the directory that created them).
add_library(nanochat_data_deps INTERFACE IMPORTED GLOBAL)
set_target_properties(nanochat_data_deps PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES
    "${NANOCHAT_ZSTD_INCLUDE_DIR};${NANOCHAT_SNAPPY_INCLUDE_DIR};${ZLIB_INCLUDE_DIRS};${CURL_INCLUDE_DIRS}"
  INTERFACE_LINK_LIBRARIES
    "${NANOCHAT_ZSTD_LIBRARY};${NANOCHAT_SNAPPY_LIBRARY};${ZLIB_LIBRARIES};${CURL_LIBRARIES};${CMAKE_THREAD_LIBS_INIT}")
add_library(nanochat::data INTERFACE IMPORTED GLOBAL)
set_target_properties(nanochat::data PROPERTIES
  INTERFACE_LINK_LIBRARIES "nanochat::nanochat;nanochat_data_deps")
