package profiles_test

const helperEnv = "VMFLOW_PROFILES_TEST_HELPER"

func runHelper(string) int { return 2 }
