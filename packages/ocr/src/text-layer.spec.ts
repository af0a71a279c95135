import { describe, expect, it } from 'vitest';
import { chooseSource, mergeOcr, type TextLayer, textLayerPage } from './text-layer.js';

const word = (text: string, x: number, y: number, dir: 0 | 90 = 0) => ({
  text,
  box: [x, y, 10 * text.length, 20] as [number, number, number, number],
  size: 20,
  dir,
  invisible: false,
});
const layer = (over: Partial<TextLayer> = {}): TextLayer => ({
  width: 1000,
  height: 1000,
  words: [word('Hello', 100, 100), word('world', 160, 100)],
  images: [],
  imageCoverage: 0,
  chars: 200,
  unmapped: 0,
  invisibleChars: 0,
  ...over,
});

describe('chooseSource (source: auto)', () => {
  it('decides each page by its text and its images, as the thresholds say', () => {
    expect(chooseSource(layer()).source).toBe('text');
    expect(chooseSource(undefined).source).toBe('ocr');
    expect(chooseSource(layer({ chars: 0, words: [] })).reason).toBe('no text layer');
    expect(chooseSource(layer({ chars: 5 })).source).toBe('text');
    expect(
      chooseSource(layer({ chars: 5, imageCoverage: 0.5, images: [[0, 0, 700, 700]] })).source,
    ).toBe('ocr');
    expect(chooseSource(layer({ unmapped: 30 })).reason).toBe(
      '15% of its glyphs have no Unicode mapping',
    );
    expect(chooseSource(layer({ imageCoverage: 0.9, images: [[0, 0, 1000, 900]] })).source).toBe(
      'ocr',
    );
    const mixed = chooseSource(layer({ imageCoverage: 0.2, images: [[100, 500, 500, 400]] }));
    expect(mixed).toMatchObject({ source: 'mixed', regions: [[100, 500, 500, 400]] });
    // Under a picture that holds the layer's own words (a background), no region to OCR.
    expect(chooseSource(layer({ imageCoverage: 0.2, images: [[90, 90, 300, 300]] })).source).toBe(
      'text',
    );
    // An invisible layer over a scan (an OCR tool's) is trusted; `ocr` redoes it; `text` takes it.
    const inv = layer({ imageCoverage: 1, images: [[0, 0, 1000, 1000]], invisibleChars: 200 });
    expect(chooseSource(inv).source).toBe('text');
    expect(chooseSource(inv, 'ocr').source).toBe('ocr');
    expect(chooseSource(layer({ chars: 0, words: [] }), 'text').source).toBe('text');
  });
});

describe('textLayerPage', () => {
  it('makes lines: one baseline, gaps under 1.2 em; prose columns apart; turned text after', () => {
    const page = textLayerPage({
      width: 1000,
      height: 1000,
      words: [
        word('left', 100, 100),
        word('one', 150, 100),
        word('is', 190, 100),
        word('prose', 220, 100),
        word('right', 600, 100),
        word('two', 660, 100),
        word('is', 700, 100),
        word('prose', 730, 100),
        word('left', 100, 140),
        word('three', 150, 140),
        word('is', 210, 140),
        word('prose', 240, 140),
        word('right', 600, 140),
        word('four', 660, 140),
        word('is', 710, 140),
        word('prose', 740, 140),
        word('a', 100, 180),
        word('b', 600, 180),
        word('side', 900, 100, 90),
      ],
    });
    expect(page.lines.map((l) => l.text)).toEqual([
      'left one is prose',
      'left three is prose',
      'a',
      'right two is prose',
      'right four is prose',
      'b',
      'side',
    ]);
    expect(page.lines[0]!.box).toEqual([100, 100, 170, 20]);
    expect(page.lines[0]!.words[0]).toEqual({
      text: 'left',
      confidence: 1,
      box: [100, 100, 40, 20],
    });
  });

  it('mergeOcr keeps the layer where it has text and adds OCR words elsewhere', () => {
    const page = textLayerPage(layer());
    const ocrLine = (text: string, x: number, y: number) => ({
      text,
      confidence: 0.9,
      box: [x, y, 10 * text.length, 20] as [number, number, number, number],
      quad: [
        [x, y],
        [x + 10, y],
        [x + 10, y + 20],
        [x, y + 20],
      ] as [[number, number], [number, number], [number, number], [number, number]],
      words: [
        {
          text,
          confidence: 0.9,
          box: [x, y, 10 * text.length, 20] as [number, number, number, number],
        },
      ],
    });
    const merged = mergeOcr(page, [ocrLine('Hel1o', 101, 101), ocrLine('scanned', 100, 400)]);
    expect(merged.lines.map((l) => l.text)).toEqual(['Hello world', 'scanned']);
  });
});
