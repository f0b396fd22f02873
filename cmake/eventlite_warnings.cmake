# eventlite_warnings(target): the project's warning flags, errors with EVENTLITE_WERROR.
function(eventlite_warnings target)
  # Designated initializers that leave fields at their defaults are the options idiom
  # (`{.durability = Durability::normal}`): GCC 12 would warn on each.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                                           -Wno-missing-field-initializers)
  if(EVENTLITE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
