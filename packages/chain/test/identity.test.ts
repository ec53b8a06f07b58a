import { describe, expect, test } from "bun:test";
import { Keyring } from "@polkadot/keyring";
import { cryptoWaitReady, mnemonicGenerate } from "@polkadot/util-crypto";
import { Effect, Either } from "effect";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { identityFromSecret, identityFromWallet } from "../src/index.ts";

// Substrate's well-known development account: `subkey inspect //Alice`.
const aliceAddress = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const aliceSeed = "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a";

await cryptoWaitReady();
const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(effect));

const wallet = (hotkeyFile: object, coldkeyPub: string) => {
  const root = mkdtempSync(join(tmpdir(), "covenant-wallets-"));
  mkdirSync(join(root, "miner", "hotkeys"), { recursive: true });
  writeFileSync(join(root, "miner", "hotkeys", "default"), JSON.stringify(hotkeyFile));
  writeFileSync(join(root, "miner", "coldkeypub.txt"), coldkeyPub);
  return root;
};

describe("Identity", () => {
  test("a dev URI and its secret seed give the same sr25519 key (SS58 42)", async () => {
    const fromUri = await run(identityFromSecret("//Alice"));
    const fromSeed = await run(identityFromSecret(aliceSeed));
    expect(Either.isRight(fromUri) && fromUri.right.hotkey.address).toBe(aliceAddress);
    expect(Either.isRight(fromSeed) && fromSeed.right.hotkey.address).toBe(aliceAddress);
    expect(Either.isRight(fromUri) && fromUri.right.hotkey.type).toBe("sr25519");
  });

  test("a Bittensor wallet folder: unencrypted hotkey file (phrase or seed) and coldkeypub.txt", async () => {
    const phrase = mnemonicGenerate();
    const expected = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromMnemonic(phrase).address;
    const cold = new Keyring({ type: "sr25519", ss58Format: 42 }).addFromUri("//ColdOne").address;
    const byPhrase = await run(identityFromWallet({ walletsDir: wallet({ secretPhrase: phrase, ss58Address: expected }, JSON.stringify({ ss58Address: cold })), name: "miner", hotkey: "default" }));
    expect(Either.isRight(byPhrase) && [byPhrase.right.hotkey.address, byPhrase.right.coldkey]).toEqual([expected, cold]);
    // Older wallets: secretSeed only, and a bare address in coldkeypub.txt.
    const bySeed = await run(identityFromWallet({ walletsDir: wallet({ secretPhrase: null, secretSeed: aliceSeed }, `${cold}\n`), name: "miner", hotkey: "default" }));
    expect(Either.isRight(bySeed) && [bySeed.right.hotkey.address, bySeed.right.coldkey]).toEqual([aliceAddress, cold]);
  });

  test("wrong, missing or unreadable key material is a typed IdentityError", async () => {
    const cold = aliceAddress;
    const results = await Promise.all([
      run(identityFromWallet({ walletsDir: wallet({ secretSeed: aliceSeed, ss58Address: cold.replace("Grw", "Grx") }, cold), name: "miner", hotkey: "default" })),
      run(identityFromWallet({ walletsDir: wallet({ ss58Address: cold }, cold), name: "miner", hotkey: "default" })),
      run(identityFromWallet({ walletsDir: wallet({ secretSeed: aliceSeed }, "not-an-address"), name: "miner", hotkey: "default" })),
      run(identityFromWallet({ walletsDir: "/nonexistent", name: "miner", hotkey: "default" })),
      run(identityFromWallet({ walletsDir: wallet({ secretSeed: 42 }, cold), name: "miner", hotkey: "default" })),
      run(identityFromSecret("//Alice", "bogus")),
    ]);
    expect(results.map((r) => (Either.isLeft(r) ? r.left._tag : "ok"))).toEqual(Array(6).fill("IdentityError"));
  });
});
