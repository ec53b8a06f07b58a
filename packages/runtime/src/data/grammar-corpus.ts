/**
 * A deterministic generator of simple English-like stories from a small grammar. It produces the
 * bulk of the shipped corpus (`corpus/grammar.jsonl`) so tests and demo runs have text with real
 * structure (agreement, recurring characters, document ends) and no downloads.
 */
import { Xoshiro128 } from "./sampler.ts"

const NAMES = ["Ada", "Ben", "Cora", "Dev", "Ela", "Finn", "Gita", "Hugo", "Ines", "Jon", "Kai", "Lena", "Milo", "Nora", "Omar", "Pia"] as const
const ANIMALS = ["fox", "crow", "hare", "tortoise", "lion", "mouse", "goat", "owl", "wolf", "lamb", "frog", "ant"] as const
const PLACES = ["the river", "the old mill", "the market", "the forest", "the hill", "the harbour", "the garden", "the library", "the bridge", "the farm"] as const
const THINGS = ["a lantern", "a basket of apples", "a small boat", "a map", "a silver key", "a loaf of bread", "a red kite", "a letter", "a wooden box", "a bell"] as const
const ADJECTIVES = ["quiet", "clever", "tired", "brave", "curious", "hungry", "patient", "proud", "kind", "careful"] as const
const WEATHER = ["it rained all morning", "the sun was warm", "a cold wind blew", "fog covered the valley", "the sky was clear", "snow fell softly"] as const
const TIMES = ["One morning", "Later that day", "At noon", "In the evening", "The next day", "Before dawn", "After supper", "Long ago"] as const
const VERBS_PAST = ["found", "carried", "lost", "painted", "mended", "hid", "shared", "sold", "built", "opened"] as const
const FEELINGS = ["happy", "worried", "surprised", "calm", "sad", "glad", "afraid", "hopeful"] as const
const MORALS = [
  "Slow and steady wins the race.",
  "A friend in need is a friend indeed.",
  "Look before you leap.",
  "Little by little does the trick.",
  "Honesty is the best policy.",
  "Pride goes before a fall.",
  "Many hands make light work.",
  "Do not count your chickens before they hatch.",
] as const

class Picker {
  constructor(private readonly rng: Xoshiro128) {}
  pick<T>(items: readonly T[]): T {
    return items[this.rng.below(items.length)]
  }
  chance(numerator: number, denominator: number): boolean {
    return this.rng.below(denominator) < numerator
  }
  between(lo: number, hi: number): number {
    return lo + this.rng.below(hi - lo + 1)
  }
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1)

const sentence = (p: Picker, hero: string, friend: string, animal: string): string => {
  switch (p.between(0, 9)) {
    case 0: return `${p.pick(TIMES)}, ${hero} walked to ${p.pick(PLACES)}.`
    case 1: return `There ${hero} met a ${p.pick(ADJECTIVES)} ${animal} who was looking for ${p.pick(THINGS)}.`
    case 2: return `${capitalize(p.pick(WEATHER))}, so ${hero} and ${friend} stayed near ${p.pick(PLACES)}.`
    case 3: return `${friend} ${p.pick(VERBS_PAST)} ${p.pick(THINGS)} and felt ${p.pick(FEELINGS)}.`
    case 4: return `"Where are you going?" asked the ${animal}. "To ${p.pick(PLACES)}," said ${hero}.`
    case 5: return `The ${animal} was ${p.pick(ADJECTIVES)}, but ${hero} was ${p.pick(ADJECTIVES)}.`
    case 6: return `${hero} counted ${p.between(2, 12)} ${p.chance(1, 2) ? "stones" : "birds"} on the way, then ${p.between(13, 40)} more.`
    case 7: return `When ${hero} ${p.pick(VERBS_PAST)} ${p.pick(THINGS)}, ${friend} laughed and said, "Well done!"`
    case 8: return `Because ${p.pick(WEATHER)}, the ${animal} ${p.pick(VERBS_PAST)} ${p.pick(THINGS)} before anyone woke.`
    default: return `${capitalize(p.pick(TIMES).toLowerCase())} ${hero} and the ${animal} went home, ${p.pick(FEELINGS)} and ${p.pick(ADJECTIVES)}.`
  }
}

/** One story: a title line, a few paragraphs of sentences, and a moral. */
const story = (p: Picker): string => {
  const hero = p.pick(NAMES)
  let friend = p.pick(NAMES)
  while (friend === hero) friend = p.pick(NAMES)
  const animal = p.pick(ANIMALS)
  const paragraphs: string[] = []
  for (let i = p.between(2, 4); i > 0; i--) {
    const sentences: string[] = []
    for (let j = p.between(3, 6); j > 0; j--) sentences.push(sentence(p, hero, friend, animal))
    paragraphs.push(sentences.join(" "))
  }
  return `${hero} and the ${capitalize(animal)}\n\n${paragraphs.join("\n\n")}\n\nMoral: ${p.pick(MORALS)}`
}

/** `documents` stories from `seed`; the same arguments always give the same text. */
export const generateGrammarCorpus = (seed: number, documents: number): string[] => {
  const p = new Picker(new Xoshiro128(seed))
  return Array.from({ length: documents }, () => story(p))
}

/** The shipped `corpus/grammar.jsonl` is exactly this, one `{"text": ...}` object per line. */
export const GRAMMAR_CORPUS_SEED = 20260101
export const GRAMMAR_CORPUS_DOCUMENTS = 200

export const grammarCorpusJsonl = (): string =>
  generateGrammarCorpus(GRAMMAR_CORPUS_SEED, GRAMMAR_CORPUS_DOCUMENTS).map((text) => JSON.stringify({ text })).join("\n") + "\n"
