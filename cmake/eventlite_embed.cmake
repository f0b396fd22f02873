# eventlite_embed_sql(OUTPUT file...): writes OUTPUT, a C++ file defining
# eventlite::detail::kMigrations, one {version, name, sql} entry per schema file,
# in the order given. The file names follow NNN_name.sql.
function(eventlite_embed_sql output)
  set(inputs ${ARGN})
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${output} "-DINPUTS=${inputs}"
            -P ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/eventlite_embed_run.cmake
    DEPENDS ${inputs} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/eventlite_embed_run.cmake
    COMMENT "Embedding schema migrations"
    VERBATIM)
endfunction()
