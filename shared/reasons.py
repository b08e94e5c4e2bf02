"""Reason codes of design.md, each with what the employer should do, in bokmål and English.

A code is stable: systems and support staff search for it. Messages may be improved.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ReasonCode(StrEnum):
    # intake
    SCHEMA_INVALID = "SCHEMA_INVALID"
    ORG_NUMBER_INVALID = "ORG_NUMBER_INVALID"
    NATIONAL_ID_INVALID = "NATIONAL_ID_INVALID"
    WORKER_IDENTITY_MISSING = "WORKER_IDENTITY_MISSING"
    PHOTO_MISSING = "PHOTO_MISSING"
    PHOTO_UNREADABLE = "PHOTO_UNREADABLE"
    PHOTO_FORMAT = "PHOTO_FORMAT"
    PHOTO_TOO_SMALL = "PHOTO_TOO_SMALL"
    PHOTO_TOO_LARGE = "PHOTO_TOO_LARGE"
    PHOTO_CHECKSUM_MISMATCH = "PHOTO_CHECKSUM_MISMATCH"
    PHOTO_EMPTY = "PHOTO_EMPTY"
    PHOTO_PROPORTIONS = "PHOTO_PROPORTIONS"
    ID_COPY_MISSING = "ID_COPY_MISSING"
    ID_COPY_UNREADABLE = "ID_COPY_UNREADABLE"
    ID_COPY_FORMAT = "ID_COPY_FORMAT"
    ID_COPY_TOO_LARGE = "ID_COPY_TOO_LARGE"
    ID_COPY_CHECKSUM_MISMATCH = "ID_COPY_CHECKSUM_MISMATCH"
    ID_COPY_EMPTY = "ID_COPY_EMPTY"
    ID_COPY_ENCRYPTED = "ID_COPY_ENCRYPTED"
    ID_COPY_PAGES = "ID_COPY_PAGES"
    DOCUMENT_FETCH_FAILED = "DOCUMENT_FETCH_FAILED"
    # registry_check
    EMPLOYER_NOT_FOUND = "EMPLOYER_NOT_FOUND"
    EMPLOYER_DELETED = "EMPLOYER_DELETED"
    EMPLOYER_BANKRUPT = "EMPLOYER_BANKRUPT"
    EMPLOYER_DISSOLVING = "EMPLOYER_DISSOLVING"
    CLEANING_NOT_APPROVED = "CLEANING_NOT_APPROVED"
    CLEANING_COMPANY_NEEDS_CLEANING_CARD = "CLEANING_COMPANY_NEEDS_CLEANING_CARD"
    STAFFING_NOT_APPROVED = "STAFFING_NOT_APPROVED"
    EMPLOYMENT_NOT_FOUND = "EMPLOYMENT_NOT_FOUND"
    PERSON_NOT_FOUND = "PERSON_NOT_FOUND"
    PERSON_MISMATCH = "PERSON_MISMATCH"
    REGISTER_UNAVAILABLE = "REGISTER_UNAVAILABLE"
    # registry_check: waits and cases a person decides (never a rejection)
    EMPLOYER_SUB_UNIT_DELETED = "EMPLOYER_SUB_UNIT_DELETED"
    CLEANING_APPROVAL_PENDING = "CLEANING_APPROVAL_PENDING"
    CLEANING_OWNERS_ONLY = "CLEANING_OWNERS_ONLY"
    EMPLOYMENT_NOT_STARTED = "EMPLOYMENT_NOT_STARTED"
    EMPLOYMENT_ENDED = "EMPLOYMENT_ENDED"
    EMPLOYMENT_NEEDS_NATIONAL_ID = "EMPLOYMENT_NEEDS_NATIONAL_ID"
    PERSON_NAME_DIFFERS = "PERSON_NAME_DIFFERS"
    PERSON_DECEASED = "PERSON_DECEASED"
    # registry_check: warnings told with the approval
    NATIONAL_ID_REPLACED = "NATIONAL_ID_REPLACED"
    PERSON_EMIGRATED = "PERSON_EMIGRATED"
    # any stage: a message kortflyt itself could not handle (a bug, not the employer's doing)
    PROCESSING_FAILED = "PROCESSING_FAILED"
    # any stage: an event_id seen before with other content (a reused id, not a duplicate)
    EVENT_ID_CONFLICT = "EVENT_ID_CONFLICT"
    # cards after production (design.md "Cards after production"): why a card is not ACTIVE
    CARD_EMPLOYER_DISSOLVING = "CARD_EMPLOYER_DISSOLVING"
    CARD_EMPLOYER_BANKRUPT = "CARD_EMPLOYER_BANKRUPT"
    CARD_EMPLOYER_DELETED = "CARD_EMPLOYER_DELETED"
    CARD_CLEANING_APPROVAL_LOST = "CARD_CLEANING_APPROVAL_LOST"
    CARD_STAFFING_APPROVAL_LOST = "CARD_STAFFING_APPROVAL_LOST"
    CARD_EMPLOYMENT_MISSING = "CARD_EMPLOYMENT_MISSING"
    CARD_EMPLOYMENT_ENDED = "CARD_EMPLOYMENT_ENDED"
    CARD_REPORTED_LOST = "CARD_REPORTED_LOST"
    CARD_REPLACED = "CARD_REPLACED"
    CARD_SUSPENDED_BY_SUPPORT = "CARD_SUSPENDED_BY_SUPPORT"
    CARD_EXPIRED = "CARD_EXPIRED"


@dataclass(frozen=True)
class ReasonText:
    nb: str
    en: str
    retryable: bool = False
    # What the message says instead once nothing is tried again by itself (retries used
    # up, or a wait past its limit): a message never promises a try that will not come.
    settled_nb: str | None = None
    settled_en: str | None = None


CATALOGUE: dict[ReasonCode, ReasonText] = {
    ReasonCode.SCHEMA_INVALID: ReasonText(
        "Bestillingen mangler felt eller har felt i feil format. Rett feltene som er nevnt og send "
        "bestillingen på nytt.",
        "The order has missing fields or fields in the wrong format. Correct the fields named and "
        "submit the order again.",
    ),
    ReasonCode.ORG_NUMBER_INVALID: ReasonText(
        "Organisasjonsnummeret er ikke gyldig (9 siffer med riktig kontrollsiffer). Sjekk nummeret "
        "i Enhetsregisteret og send bestillingen på nytt.",
        "The organisation number is not valid (9 digits with a correct check digit). Check the "
        "number in Enhetsregisteret and submit the order again.",
    ),
    ReasonCode.NATIONAL_ID_INVALID: ReasonText(
        "Fødselsnummeret eller D-nummeret er ikke gyldig. Sjekk de 11 sifrene mot arbeidstakerens "
        "ID-dokument og send bestillingen på nytt.",
        "The national identity number or D number is not valid. Check the 11 digits against the "
        "worker's identity document and submit the order again.",
    ),
    ReasonCode.WORKER_IDENTITY_MISSING: ReasonText(
        "Arbeidstakeren mangler identitet: oppgi fødselsnummer/D-nummer, eller utenlandsk "
        "ID-dokument når personen ikke har norsk nummer.",
        "The worker's identity is missing: give a national identity number or D number, or a "
        "foreign identity document when the person has no Norwegian number.",
    ),
    ReasonCode.PHOTO_MISSING: ReasonText(
        "Bildet mangler eller lenken til det kan ikke brukes. Last opp bildet i portalen på nytt.",
        "The photo is missing or its link cannot be used. Upload the photo in the portal again.",
    ),
    ReasonCode.PHOTO_UNREADABLE: ReasonText(
        "Bildefilen er skadet og kan ikke leses. Last opp bildet på nytt.",
        "The photo file is damaged and cannot be read. Upload the photo again.",
    ),
    ReasonCode.PHOTO_FORMAT: ReasonText(
        "Bildet må være JPEG eller PNG. Lagre bildet i et av disse formatene og last det opp på "
        "nytt.",
        "The photo must be JPEG or PNG. Save the photo in one of these formats and upload it again.",
    ),
    ReasonCode.PHOTO_TOO_SMALL: ReasonText(
        "Bildet har for lav oppløsning. Bruk et portrettbilde på minst 413 × 531 piksler.",
        "The photo's resolution is too low. Use a portrait photo of at least 413 × 531 pixels.",
    ),
    ReasonCode.PHOTO_TOO_LARGE: ReasonText(
        "Bildefilen er større enn 10 MB. Last opp en mindre fil.",
        "The photo file is larger than 10 MB. Upload a smaller file.",
    ),
    ReasonCode.PHOTO_CHECKSUM_MISMATCH: ReasonText(
        "Bildet vi hentet er ikke det samme som ble lastet opp (kontrollsummen stemmer ikke). Last "
        "opp bildet på nytt.",
        "The photo we fetched is not the one that was uploaded (the checksum does not match). "
        "Upload the photo again.",
    ),
    ReasonCode.PHOTO_EMPTY: ReasonText(
        "Bildefilen er tom (0 byte). Last opp bildet på nytt.",
        "The photo file is empty (0 bytes). Upload the photo again.",
    ),
    ReasonCode.PHOTO_PROPORTIONS: ReasonText(
        "Bildet må være et portrettbilde (stående), med forhold som et passbilde (35 × 45 mm). Beskjær bildet og last det opp på nytt.",
        "The photo must be a portrait (upright) with the proportions of a passport photo (35 × 45 mm). Crop the photo and upload it again.",
    ),
    ReasonCode.ID_COPY_MISSING: ReasonText(
        "Kopien av ID-dokumentet mangler eller lenken kan ikke brukes. Last den opp i portalen på "
        "nytt.",
        "The copy of the identity document is missing or its link cannot be used. Upload it in the "
        "portal again.",
    ),
    ReasonCode.ID_COPY_UNREADABLE: ReasonText(
        "ID-kopien er skadet, kryptert eller kan ikke leses. Last opp en lesbar kopi.",
        "The ID copy is damaged, encrypted or cannot be read. Upload a readable copy.",
    ),
    ReasonCode.ID_COPY_FORMAT: ReasonText(
        "ID-kopien må være PDF, JPEG eller PNG. Lagre den i et av disse formatene og last den opp "
        "på nytt.",
        "The ID copy must be PDF, JPEG or PNG. Save it in one of these formats and upload it again.",
    ),
    ReasonCode.ID_COPY_TOO_LARGE: ReasonText(
        "ID-kopien er større enn 10 MB. Last opp en mindre fil.",
        "The ID copy is larger than 10 MB. Upload a smaller file.",
    ),
    ReasonCode.ID_COPY_CHECKSUM_MISMATCH: ReasonText(
        "ID-kopien vi hentet er ikke den samme som ble lastet opp (kontrollsummen stemmer ikke). "
        "Last den opp på nytt.",
        "The ID copy we fetched is not the one that was uploaded (the checksum does not match). "
        "Upload it again.",
    ),
    ReasonCode.ID_COPY_EMPTY: ReasonText(
        "ID-kopien er tom (0 byte). Last den opp på nytt.",
        "The ID copy is empty (0 bytes). Upload it again.",
    ),
    ReasonCode.ID_COPY_ENCRYPTED: ReasonText(
        "ID-kopien er en passordbeskyttet PDF. Last opp en PDF uten passord.",
        "The ID copy is a password-protected PDF. Upload a PDF without a password.",
    ),
    ReasonCode.ID_COPY_PAGES: ReasonText(
        "ID-kopien må ha 1 til 4 sider. Last opp bare sidene av ID-dokumentet.",
        "The ID copy must have 1 to 4 pages. Upload only the pages of the identity document.",
    ),
    ReasonCode.DOCUMENT_FETCH_FAILED: ReasonText(
        "Vi får ikke hentet dokumentene akkurat nå. Vi prøver igjen automatisk; du trenger ikke "
        "gjøre noe.",
        "We cannot fetch the documents right now. We will try again automatically; you need not do "
        "anything.",
        retryable=True,
        settled_nb="Vi fikk ikke hentet dokumentene etter flere forsøk. Kundestøtte følger opp "
        "bestillingen; last gjerne opp dokumentene på nytt i portalen.",
        settled_en="We could not fetch the documents after several tries. Support will follow up "
        "the order; you may upload the documents again in the portal.",
    ),
    ReasonCode.EMPLOYER_NOT_FOUND: ReasonText(
        "Arbeidsgiveren finnes ikke i Enhetsregisteret. Sjekk organisasjonsnummeret.",
        "The employer is not in Enhetsregisteret. Check the organisation number.",
    ),
    ReasonCode.EMPLOYER_DELETED: ReasonText(
        "Arbeidsgiveren er slettet i Enhetsregisteret. Bestill kortet fra en aktiv virksomhet.",
        "The employer has been deleted from Enhetsregisteret. Order the card from an active "
        "company.",
    ),
    ReasonCode.EMPLOYER_BANKRUPT: ReasonText(
        "Arbeidsgiveren er registrert konkurs. Det kan ikke bestilles HMS-kort.",
        "The employer is registered as bankrupt. HMS cards cannot be ordered.",
    ),
    ReasonCode.EMPLOYER_DISSOLVING: ReasonText(
        "Arbeidsgiveren er under avvikling eller tvangsoppløsning. Det kan ikke bestilles HMS-kort.",
        "The employer is being wound up or compulsorily dissolved. HMS cards cannot be ordered.",
    ),
    ReasonCode.CLEANING_NOT_APPROVED: ReasonText(
        "Virksomheten er ikke godkjent i Renholdsregisteret. Søk godkjenning hos Arbeidstilsynet "
        "før du bestiller renholdskort.",
        "The company is not approved in Renholdsregisteret. Apply for approval from the Labour "
        "Inspection Authority before ordering cleaning cards.",
    ),
    ReasonCode.CLEANING_COMPANY_NEEDS_CLEANING_CARD: ReasonText(
        "Virksomheten står i Renholdsregisteret og skal bestille renholdskort. Bestill kortet på "
        "nytt som renholdskort; det gjelder også på bygge- og anleggsplasser.",
        "The company is in Renholdsregisteret and must order cleaning cards. Order the card again "
        "as a cleaning card; it is also valid on construction sites.",
    ),
    ReasonCode.STAFFING_NOT_APPROVED: ReasonText(
        "Bemanningsforetaket er ikke godkjent i Bemanningsforetaksregisteret. Registrer foretaket "
        "hos Arbeidstilsynet først.",
        "The staffing company is not approved in Bemanningsforetaksregisteret. Register with the "
        "Labour Inspection Authority first.",
    ),
    ReasonCode.EMPLOYMENT_NOT_FOUND: ReasonText(
        "Arbeidsforholdet er ikke meldt i Aa-registeret. Meld arbeidsforholdet i a-meldingen; vi "
        "sjekker på nytt.",
        "The employment is not reported in Aa-registeret. Report it in the a-melding; we will "
        "check again.",
        settled_nb="Arbeidsforholdet er fortsatt ikke meldt i Aa-registeret, og vi sjekker ikke "
        "lenger av oss selv. Meld det i a-meldingen; kundestøtte ser på bestillingen.",
        settled_en="The employment is still not reported in Aa-registeret, and we no longer check "
        "by ourselves. Report it in the a-melding; support will look at the order.",
    ),
    ReasonCode.PERSON_NOT_FOUND: ReasonText(
        "Personen finnes ikke i Folkeregisteret med dette nummeret. Sjekk fødselsnummer/D-nummer.",
        "The person is not in Folkeregisteret under this number. Check the national identity "
        "number or D number.",
    ),
    ReasonCode.PERSON_MISMATCH: ReasonText(
        "Navn eller fødselsdato stemmer ikke med Folkeregisteret. Rett opplysningene og send "
        "bestillingen på nytt.",
        "The name or birth date does not match Folkeregisteret. Correct them and submit the order "
        "again.",
    ),
    ReasonCode.PERSON_NAME_DIFFERS: ReasonText(
        "Navnet i bestillingen skiller seg litt fra navnet i Folkeregisteret. Kundestøtte "
        "sammenligner dem; er navnet feilstavet, rett det og send bestillingen på nytt.",
        "The name in the order differs slightly from the name in Folkeregisteret. Support will "
        "compare them; if the name is misspelt, correct it and submit the order again.",
    ),
    ReasonCode.PERSON_DECEASED: ReasonText(
        "Folkeregisteret oppgir at personen med dette nummeret er død. Kundestøtte ser på "
        "bestillingen; sjekk fødselsnummeret/D-nummeret.",
        "Folkeregisteret records the person with this number as deceased. Support will look at "
        "the order; check the national identity number or D number.",
    ),
    ReasonCode.NATIONAL_ID_REPLACED: ReasonText(
        "Nummeret i bestillingen er opphørt i Folkeregisteret og erstattet av et nytt. Vi sjekket "
        "personen med det nye nummeret; bruk det nye nummeret i senere bestillinger.",
        "The number in the order has ceased in Folkeregisteret and been replaced by a new one. We "
        "checked the person under the new number; use the new number in later orders.",
    ),
    ReasonCode.PERSON_EMIGRATED: ReasonText(
        "Folkeregisteret oppgir at personen er utflyttet fra Norge. Kortet lages; sjekk at "
        "arbeidstakeren fortsatt arbeider her.",
        "Folkeregisteret records the person as emigrated from Norway. The card is made; check "
        "that the worker still works here.",
    ),
    ReasonCode.REGISTER_UNAVAILABLE: ReasonText(
        "Et offentlig register svarer ikke akkurat nå. Vi prøver igjen automatisk; du trenger ikke "
        "gjøre noe.",
        "A public register is not answering right now. We will try again automatically; you need "
        "not do anything.",
        retryable=True,
        settled_nb="Et offentlig register svarte ikke på flere forsøk. Kundestøtte følger opp "
        "bestillingen når registeret svarer igjen; du trenger ikke gjøre noe nå.",
        settled_en="A public register did not answer after several tries. Support will follow up "
        "the order once the register answers again; you need not do anything now.",
    ),
    ReasonCode.EMPLOYER_SUB_UNIT_DELETED: ReasonText(
        "Underenheten i bestillingen er slettet i Enhetsregisteret, og vi finner ikke hovedenheten "
        "den hørte til. Kundestøtte ser på bestillingen; bestill gjerne på nytt med "
        "hovedenhetens organisasjonsnummer.",
        "The sub-unit in the order has been deleted from Enhetsregisteret, and we cannot find the "
        "main unit it belonged to. Support will look at the order; you may order again with the "
        "main unit's organisation number.",
    ),
    ReasonCode.CLEANING_APPROVAL_PENDING: ReasonText(
        "Virksomhetens søknad eller HMS-kortbestilling er under behandling i Renholdsregisteret. "
        "Kortet lages først når virksomheten er godkjent; vi sjekker på nytt, du trenger ikke "
        "gjøre noe.",
        "The company's application or HMS card order is being processed in Renholdsregisteret. "
        "The card is made only once the company is approved; we will check again, you need not "
        "do anything.",
        settled_nb="Virksomheten er fortsatt ikke godkjent i Renholdsregisteret (under "
        "behandling), og vi sjekker ikke lenger av oss selv. Kundestøtte ser på bestillingen; "
        "kontakt Arbeidstilsynet om søknaden.",
        settled_en="The company is still not approved in Renholdsregisteret (being processed), and "
        "we no longer check by ourselves. Support will look at the order; contact the Labour "
        "Inspection Authority about the application.",
    ),
    ReasonCode.CLEANING_OWNERS_ONLY: ReasonText(
        "Virksomheten er godkjent i Renholdsregisteret uten ansatte: renholdskort gis bare til "
        "eierne. Kundestøtte ser på bestillingen; har virksomheten fått ansatte, må godkjenningen "
        "endres hos Arbeidstilsynet.",
        "The company is approved in Renholdsregisteret without employees: cleaning cards go to "
        "its owners only. Support will look at the order; if the company now has employees, the "
        "approval must be changed with the Labour Inspection Authority.",
    ),
    ReasonCode.EMPLOYMENT_NOT_STARTED: ReasonText(
        "Arbeidsforholdet er meldt i Aa-registeret, men starter om mer enn 30 dager. Kortet kan "
        "lages fra 30 dager før oppstart; vi sjekker på nytt, du trenger ikke gjøre noe.",
        "The employment is reported in Aa-registeret but starts more than 30 days from now. The "
        "card can be made from 30 days before the start; we will check again, you need not do "
        "anything.",
        settled_nb="Arbeidsforholdet er meldt i Aa-registeret, men starter om mer enn 30 dager, og "
        "vi sjekker ikke lenger av oss selv. Bestill kortet på nytt tidligst 30 dager før oppstart.",
        settled_en="The employment is reported in Aa-registeret but starts more than 30 days from "
        "now, and we no longer check by ourselves. Order the card again no earlier than 30 days "
        "before the start.",
    ),
    ReasonCode.EMPLOYMENT_ENDED: ReasonText(
        "Aa-registeret viser at arbeidsforholdet er avsluttet. Er arbeidstakeren ansatt på nytt, "
        "meld det nye arbeidsforholdet i a-meldingen; vi sjekker på nytt.",
        "Aa-registeret shows the employment has ended. If the worker is employed again, report the "
        "new employment in the a-melding; we will check again.",
        settled_nb="Aa-registeret viser fortsatt at arbeidsforholdet er avsluttet, og vi sjekker "
        "ikke lenger av oss selv. Meld et nytt arbeidsforhold i a-meldingen og bestill på nytt.",
        settled_en="Aa-registeret still shows the employment has ended, and we no longer check by "
        "ourselves. Report a new employment in the a-melding and order again.",
    ),
    ReasonCode.EMPLOYMENT_NEEDS_NATIONAL_ID: ReasonText(
        "Arbeidstakeren har ikke fødselsnummer eller D-nummer, så arbeidsforholdet kan ikke slås "
        "opp i Aa-registeret. Kundestøtte ser på bestillingen; får arbeidstakeren D-nummer, "
        "bestill på nytt med det.",
        "The worker has no national identity number or D number, so the employment cannot be "
        "looked up in Aa-registeret. Support will look at the order; once the worker has a D "
        "number, order again with it.",
    ),
    ReasonCode.PROCESSING_FAILED: ReasonText(
        "Bestillingen kunne ikke behandles på grunn av en feil hos oss. Kundestøtte er varslet og "
        "følger den opp; du trenger ikke gjøre noe.",
        "The order could not be processed because of a fault on our side. Support has been "
        "notified and will follow it up; you need not do anything.",
    ),
    ReasonCode.EVENT_ID_CONFLICT: ReasonText(
        "Meldingen har en event_id som allerede er brukt for en annen melding med annet "
        "innhold, så den ble ikke behandlet. Send den rettede bestillingen på nytt med en ny "
        "event_id.",
        "The message has an event_id already used by another message with other content, so "
        "it was not processed. Send the corrected order again with a new event_id.",
    ),
    ReasonCode.CARD_EMPLOYER_DISSOLVING: ReasonText(
        "Arbeidsgiveren er under avvikling eller tvangsoppløsning, så kortet er sperret. Det blir "
        "gyldig igjen av seg selv når Enhetsregisteret ikke lenger viser det.",
        "The employer is being wound up or compulsorily dissolved, so the card is suspended. It "
        "becomes valid again by itself once Enhetsregisteret no longer shows this.",
    ),
    ReasonCode.CARD_EMPLOYER_BANKRUPT: ReasonText(
        "Arbeidsgiveren er registrert konkurs, så kortet er ugyldig. En ny arbeidsgiver må bestille "
        "nytt kort.",
        "The employer is registered as bankrupt, so the card is revoked. A new employer must order "
        "a new card.",
    ),
    ReasonCode.CARD_EMPLOYER_DELETED: ReasonText(
        "Arbeidsgiveren er slettet i Enhetsregisteret, så kortet er ugyldig. En ny arbeidsgiver må "
        "bestille nytt kort.",
        "The employer has been deleted from Enhetsregisteret, so the card is revoked. A new "
        "employer must order a new card.",
    ),
    ReasonCode.CARD_CLEANING_APPROVAL_LOST: ReasonText(
        "Virksomheten er ikke lenger godkjent i Renholdsregisteret, så kortet er sperret. Det blir "
        "gyldig igjen av seg selv når virksomheten er godkjent igjen.",
        "The company is no longer approved in Renholdsregisteret, so the card is suspended. It "
        "becomes valid again by itself once the company is approved again.",
    ),
    ReasonCode.CARD_STAFFING_APPROVAL_LOST: ReasonText(
        "Bemanningsforetaket er ikke lenger godkjent i Bemanningsforetaksregisteret, så kortet er "
        "sperret. Det blir gyldig igjen av seg selv når foretaket er godkjent igjen.",
        "The staffing company is no longer approved in Bemanningsforetaksregisteret, so the card "
        "is suspended. It becomes valid again by itself once the company is approved again.",
    ),
    ReasonCode.CARD_EMPLOYMENT_MISSING: ReasonText(
        "Arbeidsforholdet finnes ikke lenger i Aa-registeret, så kortet er sperret. Meld "
        "arbeidsforholdet i a-meldingen; kortet blir gyldig igjen av seg selv.",
        "The employment is no longer in Aa-registeret, so the card is suspended. Report the "
        "employment in the a-melding; the card becomes valid again by itself.",
    ),
    ReasonCode.CARD_EMPLOYMENT_ENDED: ReasonText(
        "Arbeidsforholdet er avsluttet, så kortet er ugyldig. Får arbeidstakeren nytt "
        "arbeidsforhold, må den nye arbeidsgiveren bestille nytt kort.",
        "The employment has ended, so the card is revoked. If the worker is employed again, the "
        "new employer must order a new card.",
    ),
    ReasonCode.CARD_REPORTED_LOST: ReasonText(
        "Kortet er meldt tapt eller stjålet og er ugyldig. Et nytt kort med nytt kortnummer lages "
        "når det er bestilt.",
        "The card has been reported lost or stolen and is revoked. A new card with a new card "
        "number is made when one is ordered.",
    ),
    ReasonCode.CARD_REPLACED: ReasonText(
        "Kortet er erstattet av et nytt kort og er ugyldig. Bruk det nye kortet.",
        "The card has been replaced by a new card and is revoked. Use the new card.",
    ),
    ReasonCode.CARD_SUSPENDED_BY_SUPPORT: ReasonText(
        "Kortet er sperret av kundestøtte. Kontakt kundestøtte for å få vite hva som skal til.",
        "The card has been suspended by support. Contact support to learn what is needed.",
    ),
    ReasonCode.CARD_EXPIRED: ReasonText(
        "Kortets gyldighet er utløpt. Bestill nytt kort.",
        "The card's validity has expired. Order a new card.",
    ),
}
