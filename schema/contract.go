package schema

// ContractVersion is the version of the record contract this build writes:
// the released envelope (schema/avro/released/<ContractVersion>/) that
// equals schema/avro/envelope.avsc. A change to the envelope is released as
// the next version (README, "Release process"); TestContractVersionReleased
// fails while the current schema differs from the released copy named here.
const ContractVersion = "v2"
