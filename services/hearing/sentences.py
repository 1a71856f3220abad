"""Kiosk-domain English sentences for speech fixtures (synthesised with espeak-ng ``mb-us2``)."""

MBROLA_SENTENCES = [
    "hello what time is it today",
    "where is the meeting room",
    "i have an appointment with the director",
    "can you send a message to my colleague",
    "please tell them that i am waiting in the lobby",
    "thank you very much",
    "where can i find the elevator",
    "is there a coffee machine on this floor",
    "my name is john and i am here for the interview",
    "good morning how are you",
]
