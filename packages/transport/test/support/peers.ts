import { Keyring } from "@polkadot/keyring"
import type { KeyringPair } from "@polkadot/keyring/types"
import { cryptoWaitReady } from "@polkadot/util-crypto"

/** sr25519 hotkeys (ss58 prefix 42), derived from fixed dev URIs. */
export const makeHotkeys = async (count: number, label = "peer"): Promise<Array<KeyringPair>> => {
  await cryptoWaitReady()
  const keyring = new Keyring({ type: "sr25519", ss58Format: 42 })
  return Array.from({ length: count }, (_, i) => keyring.addFromUri(`//${label}/${i}`))
}

let bucketCounter = 0
/** A fresh, valid bucket name per call. */
export const freshBucket = (label: string): string =>
  `${label}-${process.pid}-${Date.now().toString(36)}-${(bucketCounter++).toString(36)}`.toLowerCase().slice(0, 63)
