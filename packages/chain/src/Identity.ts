import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { hexToU8a, isHex } from "@polkadot/util";
import { cryptoWaitReady, decodeAddress, encodeAddress } from "@polkadot/util-crypto";
import { Effect, Either, ParseResult, Schema } from "effect";
import { homedir } from "node:os";
import { join } from "node:path";
import { IdentityError } from "./errors.ts";

/** Bittensor (and generic Substrate) SS58 prefix. */
export const ss58Prefix = 42;

/**
 * This node on chain: the hotkey signs every protocol call (commitments, weights) and owns the uid;
 * the coldkey (an address only) owns the funds and is recorded at registration.
 */
export interface Identity {
  readonly hotkey: KeyringPair;
  readonly coldkey: string;
}

const ready = Effect.promise(() => cryptoWaitReady());

const pairFromSecret = (secret: string, source: string): Effect.Effect<KeyringPair, IdentityError> =>
  Effect.flatMap(ready, () =>
    Effect.try({
      try: () => {
        const keyring = new Keyring({ type: "sr25519", ss58Format: ss58Prefix });
        // A bare 0x-hex 32-byte value is a mini-secret seed; anything else is a mnemonic or a URI.
        return isHex(secret, 256) ? keyring.addFromSeed(hexToU8a(secret)) : keyring.addFromUri(secret);
      },
      catch: (cause) => new IdentityError({ source, reason: `not a seed, mnemonic or dev URI: ${String(cause)}` }),
    }),
  );

const checkAddress = (address: string, source: string): Effect.Effect<string, IdentityError> =>
  Effect.try({
    try: () => encodeAddress(decodeAddress(address), ss58Prefix),
    catch: () => new IdentityError({ source, reason: `not an SS58 address: ${address}` }),
  });

/**
 * An identity from a seed (0x + 64 hex), a mnemonic, or a dev URI such as `//Alice`. The coldkey
 * defaults to the hotkey's own address (fine for local chains, where funds are not real).
 */
export const identityFromSecret = (
  secret: string,
  coldkey?: string,
): Effect.Effect<Identity, IdentityError> =>
  Effect.gen(function* () {
    const hotkey = yield* pairFromSecret(secret, "secret");
    const cold = coldkey === undefined ? hotkey.address : yield* checkAddress(coldkey, "coldkey");
    return { hotkey, coldkey: cold };
  });

const HotkeyFile = Schema.Struct({
  secretPhrase: Schema.optional(Schema.NullOr(Schema.String)),
  secretSeed: Schema.optional(Schema.NullOr(Schema.String)),
  ss58Address: Schema.optional(Schema.String),
});
const ColdkeyPubFile = Schema.Struct({ ss58Address: Schema.String });

const readText = (path: string) =>
  Effect.tryPromise({
    try: () => Bun.file(path).text(),
    catch: () => new IdentityError({ source: path, reason: "cannot read file" }),
  });

const parseJson = <A, I>(schema: Schema.Schema<A, I>, text: string, source: string) =>
  Either.match(Schema.decodeUnknownEither(Schema.parseJson(schema))(text), {
    onLeft: (e) => Effect.fail(new IdentityError({ source, reason: ParseResult.TreeFormatter.formatErrorSync(e) })),
    onRight: Effect.succeed,
  });

/** Where Bittensor's CLI keeps wallets. */
export const defaultWalletsDir = (): string => join(homedir(), ".bittensor", "wallets");

/**
 * An identity from a Bittensor wallet folder: `<walletsDir>/<name>/hotkeys/<hotkey>` (an unencrypted
 * JSON keyfile with `secretPhrase` or `secretSeed`) and `<walletsDir>/<name>/coldkeypub.txt`.
 * The encrypted coldkey is never read: it only signs registration and staking, which this package
 * leaves to Bittensor's own tools.
 */
export const identityFromWallet = (options: {
  readonly name: string;
  readonly hotkey: string;
  readonly walletsDir?: string;
}): Effect.Effect<Identity, IdentityError> =>
  Effect.gen(function* () {
    const walletDir = join(options.walletsDir ?? defaultWalletsDir(), options.name);
    const hotkeyPath = join(walletDir, "hotkeys", options.hotkey);
    const hotkeyFile = yield* parseJson(HotkeyFile, yield* readText(hotkeyPath), hotkeyPath);
    const secret = hotkeyFile.secretPhrase ?? hotkeyFile.secretSeed;
    if (secret === undefined || secret === null) {
      return yield* new IdentityError({ source: hotkeyPath, reason: "no secretPhrase or secretSeed (encrypted hotkeys are not supported)" });
    }
    const hotkey = yield* pairFromSecret(secret, hotkeyPath);
    if (hotkeyFile.ss58Address !== undefined && hotkeyFile.ss58Address !== hotkey.address) {
      return yield* new IdentityError({ source: hotkeyPath, reason: `secret derives ${hotkey.address}, file says ${hotkeyFile.ss58Address}` });
    }
    const coldPath = join(walletDir, "coldkeypub.txt");
    const coldText = (yield* readText(coldPath)).trim();
    // Old wallets store the bare address, newer ones a JSON object.
    const coldAddress = coldText.startsWith("{") ? (yield* parseJson(ColdkeyPubFile, coldText, coldPath)).ss58Address : coldText;
    const coldkey = yield* checkAddress(coldAddress, coldPath);
    return { hotkey, coldkey };
  });
