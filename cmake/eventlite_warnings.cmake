# eventlite_warnings(target): the project's warning flags, errors with EVENTLITE_WERROR.
function(eventlite_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow)
  if(EVENTLITE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
