"""Read QR codes the way a phone does: render a PDF page to pixels, then decode the image.

pypdfium2 (PDFium, Chrome's PDF engine) renders; zxing-cpp decodes. Tests use this so a
QR code is checked as printed, never from the string the code meant to encode.
"""

from __future__ import annotations

import pypdfium2 as pdfium
import zxingcpp


def qr_codes_in_pdf(pdf: bytes, page: int, dpi: int = 600) -> list[str]:
    """The text of every QR code on `page` (0-based) of `pdf`, rendered at `dpi`."""
    document = pdfium.PdfDocument(pdf)
    try:
        image = document[page].render(scale=dpi / 72).to_pil()
    finally:
        document.close()
    return [
        result.text
        for result in zxingcpp.read_barcodes(image)
        if result.format == zxingcpp.BarcodeFormat.QRCode
    ]
