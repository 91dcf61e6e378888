package archive

// RawZstdFrame is rawZstdFrame, for the tests of package archive_test.
var RawZstdFrame = rawZstdFrame
