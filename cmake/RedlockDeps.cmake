# Finds the dependencies of libredlock and defines the targets it links to:
#
#   redlock_deps::hiredis   hiredis 0.14+, usable as #include <hiredis/hiredis.h>
#   Threads::Threads        pthreads
#   redlock_deps::openssl   OpenSSL 3 (libssl, libcrypto), only when
#                           REDLOCK_DEPS_WITH_TLS is true (pkg-config "openssl")
#
# Used by the build (CMakeLists.txt) and, installed next to
# redlockConfig.cmake, by find_package(redlock) for a static libredlock, so
# that the link interface of the exported redlock::redlock resolves to the
# same target names in both places.
#
# hiredis is looked for, in order, as
#   1. an existing target hiredis::hiredis (the host built hiredis itself),
#   2. find_package(hiredis CONFIG) providing hiredis::hiredis,
#   3. pkg-config "hiredis" (Debian's HiredisConfig.cmake defines no target).
#
# Never fails by itself: it sets REDLOCK_DEPS_MISSING to the list of what
# could not be found (empty when all is well); the caller decides.

set(REDLOCK_DEPS_MISSING "")

# -- pthreads ---------------------------------------------------------------
if(NOT TARGET Threads::Threads)
  set(THREADS_PREFER_PTHREAD_FLAG ON)
  find_package(Threads QUIET)
endif()
if(NOT TARGET Threads::Threads)
  list(APPEND REDLOCK_DEPS_MISSING "Threads")
endif()

# pkg-config puts the header's own directory on the include path
# (-I/usr/include/hiredis) while the sources include
# <hiredis/hiredis.h>: add the parent of such a directory.
function(_redlock_deps_parent_dirs out subdir)
  set(dirs "")
  foreach(d IN LISTS ARGN)
    string(REGEX REPLACE "/+$" "" d "${d}")
    get_filename_component(name "${d}" NAME)
    if(name STREQUAL subdir)
      get_filename_component(parent "${d}" DIRECTORY)
      list(APPEND dirs "${parent}")
    endif()
  endforeach()
  if(dirs)
    list(REMOVE_DUPLICATES dirs)
  endif()
  set(${out} "${dirs}" PARENT_SCOPE)
endfunction()

# -- hiredis ----------------------------------------------------------------
if(NOT TARGET redlock_deps::hiredis)
  set(_redlock_hiredis "")
  set(_redlock_hiredis_inc "")
  if(TARGET hiredis::hiredis)
    set(_redlock_hiredis hiredis::hiredis)
  else()
    find_package(hiredis CONFIG QUIET)
    if(TARGET hiredis::hiredis)
      set(_redlock_hiredis hiredis::hiredis)
    endif()
  endif()
  if(NOT _redlock_hiredis)
    find_package(PkgConfig QUIET)
    if(PKG_CONFIG_FOUND)
      pkg_check_modules(REDLOCK_PC_HIREDIS QUIET IMPORTED_TARGET hiredis)
      if(TARGET PkgConfig::REDLOCK_PC_HIREDIS)
        set(_redlock_hiredis PkgConfig::REDLOCK_PC_HIREDIS)
        _redlock_deps_parent_dirs(_redlock_hiredis_inc hiredis
                                  ${REDLOCK_PC_HIREDIS_INCLUDE_DIRS})
      endif()
    endif()
  endif()
  if(_redlock_hiredis)
    add_library(redlock_deps::hiredis INTERFACE IMPORTED)
    set_target_properties(redlock_deps::hiredis PROPERTIES
      INTERFACE_LINK_LIBRARIES "${_redlock_hiredis}")
    if(_redlock_hiredis_inc)
      set_target_properties(redlock_deps::hiredis PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${_redlock_hiredis_inc}")
    endif()
  endif()
  unset(_redlock_hiredis)
  unset(_redlock_hiredis_inc)
endif()
if(NOT TARGET redlock_deps::hiredis)
  list(APPEND REDLOCK_DEPS_MISSING "hiredis")
endif()


# -- OpenSSL (TLS builds only) ------------------------------------------------
if(REDLOCK_DEPS_WITH_TLS AND NOT TARGET redlock_deps::openssl)
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(REDLOCK_PC_OPENSSL QUIET IMPORTED_TARGET "openssl>=3")
  endif()
  if(TARGET PkgConfig::REDLOCK_PC_OPENSSL)
    add_library(redlock_deps::openssl INTERFACE IMPORTED)
    set_target_properties(redlock_deps::openssl PROPERTIES
      INTERFACE_LINK_LIBRARIES PkgConfig::REDLOCK_PC_OPENSSL)
  endif()
endif()
if(REDLOCK_DEPS_WITH_TLS AND NOT TARGET redlock_deps::openssl)
  list(APPEND REDLOCK_DEPS_MISSING "openssl>=3 (libssl-dev)")
endif()
