# Writes redlock.pc at install time, so that its paths follow the prefix the
# project is actually installed to (cmake --install --prefix ...), not the
# one it was configured with.  Run from an install(CODE) rule that sets:
#   REDLOCK_PC_IN, REDLOCK_PC_OUT, REDLOCK_PC_LIBDIR_REL,
#   REDLOCK_PC_INCLUDEDIR_REL, PROJECT_VERSION, REDLOCK_PC_REQUIRES
# CMAKE_INSTALL_PREFIX is the install-time prefix here (without DESTDIR).

set(REDLOCK_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(kind LIBDIR INCLUDEDIR)
  set(rel "${REDLOCK_PC_${kind}_REL}")
  if(IS_ABSOLUTE "${rel}")
    set(REDLOCK_PC_${kind} "${rel}")
  else()
    set(REDLOCK_PC_${kind} "\${prefix}/${rel}")
  endif()
endforeach()
configure_file("${REDLOCK_PC_IN}" "${REDLOCK_PC_OUT}" @ONLY)
