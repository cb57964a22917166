library(testthat)
library(scintegrate)

test_check("scintegrate")
