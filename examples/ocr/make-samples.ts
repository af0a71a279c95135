// Writes the sample documents `npm start` reads: a two-page PDF (text drawn with the PDF's
// standard fonts, rendered by pdfjs at OCR time) and a two-page TIFF scan (rendered from SVG
// with system fonts, then slightly rotated and blurred as a scanner would), beside the text each
// page holds. Run once by hand; the outputs are committed:
//   node --import tsx examples/ocr/make-samples.ts
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import sharp from 'sharp';

const out = join(import.meta.dirname, 'samples');

const letter = [
  [
    'Acme Logistics GmbH',
    'Invoice 2026-0412',
    'Date: 14 March 2026',
    'Customer number: 77810',
    'Dear Ms. Laurent,',
    'thank you for your order of 2 March.',
    'We delivered 40 pallets to your Lyon office.',
    'The total amount due is 12,480.00 EUR.',
    'Please pay within 30 days of this invoice.',
  ],
  [
    'Payment details',
    'Bank: Sparkasse Hannover',
    'IBAN: DE44 2505 0180 0000 1234 56',
    'Reference: 2026-0412',
    'Questions about this invoice?',
    'Call our service desk on +49 511 555 0100.',
    'Kind regards,',
    'Acme Logistics accounting team',
  ],
];

const scan = [
  [
    'Delivery note 5531',
    'Shipped from warehouse 3 in Hamburg',
    'Carrier: Nordic Freight AS',
    'Item 1: steel brackets, quantity 250',
    'Item 2: hex bolts M8, quantity 4000',
    'Item 3: packing crates, quantity 12',
    'Received in good condition.',
  ],
  [
    'Inspection report',
    'All crates were sealed on arrival.',
    'Two brackets showed minor scratches.',
    'No further damage was found.',
    'Signed: J. Berger, quality control',
    'Date of inspection: 18 March 2026',
  ],
];

const pdf = await PDFDocument.create();
const fonts = [
  await pdf.embedFont(StandardFonts.Helvetica),
  await pdf.embedFont(StandardFonts.TimesRoman),
];
for (const [p, lines] of letter.entries()) {
  const page = pdf.addPage([612, 792]);
  for (const [i, line] of lines.entries())
    page.drawText(line, { x: 72, y: 700 - i * 30, size: i === 0 ? 16 : 13, font: fonts[p]! });
}
writeFileSync(join(out, 'letter.pdf'), await pdf.save({ useObjectStreams: false }));
writeFileSync(join(out, 'letter.txt'), letter.map((l) => l.join('\n')).join('\n\f\n'));

// 150 dpi letter pages.
const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const pages = await Promise.all(
  scan.map(async (lines, p) => {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="1275" height="1650"><rect width="100%" height="100%" fill="white"/>${lines
      .map(
        (l, i) =>
          `<text x="150" y="${200 + i * 56}" font-family="${p ? 'DejaVu Serif' : 'DejaVu Sans'}" font-size="${i ? 26 : 34}">${xml(l)}</text>`,
      )
      .join('')}</svg>`;
    return sharp(Buffer.from(svg))
      .flatten({ background: '#fff' })
      .rotate(0.6, { background: '#fff' })
      .blur(0.6)
      .resize(1275, 1650, { fit: 'cover' })
      .greyscale()
      .png()
      .toBuffer();
  }),
);
await sharp(pages, { join: { animated: true } })
  .tiff({ compression: 'deflate', xres: 150 / 25.4, yres: 150 / 25.4 })
  .toFile(join(out, 'scan.tiff'));
writeFileSync(join(out, 'scan.txt'), scan.map((l) => l.join('\n')).join('\n\f\n'));
console.log(`wrote ${out}`);
