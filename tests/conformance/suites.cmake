# ONNX backend conformance suites, run by `kiln conformance` against the expectations file.
# Labelled `conformance`. A suite whose data is not on this machine reports itself skipped.

set(KILN_CONFORMANCE_TGZ "" CACHE FILEPATH "The ONNX 1.23.1 node test archive")
if(NOT KILN_CONFORMANCE_TGZ)
  foreach(candidate ${CMAKE_SOURCE_DIR}/../shared/conformance/onnx-1.23.1-node-tests.tgz
                    /work/shared/conformance/onnx-1.23.1-node-tests.tgz)
    if(EXISTS ${candidate})
      set(KILN_CONFORMANCE_TGZ ${candidate})
      break()
    endif()
  endforeach()
endif()
set(KILN_ONNX_1231_DIR ${CMAKE_BINARY_DIR}/onnx-1.23.1)
if(KILN_CONFORMANCE_TGZ AND NOT EXISTS ${KILN_ONNX_1231_DIR}/node)
  message(STATUS "Kiln: unpacking ${KILN_CONFORMANCE_TGZ}")
  file(ARCHIVE_EXTRACT INPUT ${KILN_CONFORMANCE_TGZ} DESTINATION ${KILN_ONNX_1231_DIR})
endif()

set(KILN_EXPECTATIONS ${CMAKE_CURRENT_LIST_DIR}/expectations.txt)
set(KILN_DEBIAN_TESTDATA /usr/share/libonnx-testdata/data)

# kiln_conformance_suite(NAME SUITE DIR): one ctest test running a whole suite on the CPU.
function(kiln_conformance_suite name suite dir)
  add_test(NAME ${name}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_suite.sh $<TARGET_FILE:kiln> ${suite} ${dir}
                   ${KILN_EXPECTATIONS} cpu)
  set_tests_properties(${name} PROPERTIES LABELS conformance SKIP_RETURN_CODE 77 TIMEOUT 1800)
endfunction()

kiln_conformance_suite(conformance_cpu_onnx_1_23_1_node onnx-1.23.1-node ${KILN_ONNX_1231_DIR}/node)
foreach(s node pytorch-converted pytorch-operator simple)
  kiln_conformance_suite(conformance_cpu_onnx_1_12_${s} onnx-1.12-${s} ${KILN_DEBIAN_TESTDATA}/${s})
endforeach()

# The same suite on the GPU (label cuda; skipped without a GPU or a CUDA build): with CPU
# fallback ("cuda" column of the expectations file) and strict, every node on the GPU
# ("cuda-strict" column).
foreach(mode cuda cuda-strict)
  string(REPLACE "-" "_" tag ${mode})
  add_test(NAME conformance_${tag}_onnx_1_23_1_node
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_suite.sh $<TARGET_FILE:kiln> onnx-1.23.1-node
                   ${KILN_ONNX_1231_DIR}/node ${KILN_EXPECTATIONS} ${mode})
  set_tests_properties(conformance_${tag}_onnx_1_23_1_node PROPERTIES LABELS cuda
                       SKIP_RETURN_CODE 77 TIMEOUT 1800)
endforeach()
